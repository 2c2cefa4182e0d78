export { deliverCallback } from './signed-callback.js';
export type { CallbackSettings } from './signed-callback.js';
export { createSimulator } from './simulator.js';
export type { CommonFaults, Simulator, SimulatorOptions } from './simulator.js';
export { runSimulator } from './run-simulator.js';
