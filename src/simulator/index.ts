export { buildSimulator, startSimulator, type RunningSimulator, type SimulatorOptions } from './app.js'
export { Simulator, UPSCALE_FAILURE, type ApiCall, type ScriptedEndpoint, type ScriptedResponse, type SimTask } from './state.js'
export { defaultChaos, mulberry32, UPSCALE_FAULTS, type Chaos, type UpscaleFault } from './chaos.js'
export { defaultVariants, type Variants } from './variants.js'
export type { CallbackAttempt } from './callbacks.js'
export type { CallbackBody } from './views.js'
// the simulator's own implementation of kie.ai's signing rule, not the gateway's
export { signKieCallback } from './sign.js'
export { renderPng } from './png.js'
