// The process entry: turns on Node's module compile cache (Node 22.1+; a no-op on Node 20)
// before the server's modules load, so restarts after the first skip recompiling them.
import module from 'node:module'

;(module as { enableCompileCache?: () => unknown }).enableCompileCache?.()
await import('./server.js')
