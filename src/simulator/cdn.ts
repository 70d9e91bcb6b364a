/** The titles Cloudflare gives its own error pages, by status. */
const CLOUDFLARE_TITLES: Record<number, string> = {
  502: 'Bad gateway',
  504: 'Gateway time-out',
  520: 'Web server is returning an unknown error',
  521: 'Web server is down',
  522: 'Connection timed out',
  523: 'Origin is unreachable',
  524: 'A timeout occurred',
  525: 'SSL handshake failed',
  526: 'Invalid SSL certificate'
}

/** A Cloudflare-like error page: HTML from the CDN, not kie.ai's envelope, which is the point. */
export function cloudflarePage(status: number): string {
  const title = CLOUDFLARE_TITLES[status] ?? 'Error'
  return '<!DOCTYPE html>\n<html lang="en-US"><head><meta charset="UTF-8" />' +
    `<title>api.kie.ai | ${status}: ${title}</title></head><body>` +
    `<div id="cf-error-details"><h1><span>${title}</span> <span>Error code ${status}</span></h1>` +
    '<p>Visit <a href="https://www.cloudflare.com/">cloudflare.com</a> for more information.</p>' +
    '<p>Cloudflare Ray ID: <strong>0000000000000000</strong> (simulated)</p></div></body></html>\n'
}

/** What a load balancer in front of an origin sends when it has nothing to route to: no envelope. */
export const SERVICE_TEMPORARILY_UNAVAILABLE = '<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n' +
  '<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n</body>\r\n</html>\r\n'
