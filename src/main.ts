// The process entry: turns on Node's module compile cache (Node 22.1+; a no-op on Node 20)
// before the server's modules load, so restarts after the first skip recompiling them. Then
// reads .env (or ENV_FILE) into the environment, before the configuration is read.
import module from 'node:module'

;(module as { enableCompileCache?: () => unknown }).enableCompileCache?.()
const { envFileMessage, readEnvFile } = await import('./config.js')
const { ConfigError } = await import('./errors.js')
try {
  const read = readEnvFile()
  if (read) process.stderr.write(`${envFileMessage(read)}\n`)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`Configuration error: ${err.message}\n`)
  process.exit(1)
}
await import('./server.js')
