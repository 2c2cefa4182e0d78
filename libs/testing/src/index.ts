export { createTestEnv } from './test-env.js';
export type { TestEnv } from './test-env.js';
export { signToken } from './tokens.js';
export { spawnApp, waitFor, buyerAddress } from './processes.js';
export type { SpawnedProcess } from './processes.js';
export { httpClient, freePort } from './http-client.js';
export type { HttpClient, HttpAnswer } from './http-client.js';
export { startApiProcess } from './api-process.js';
export type { ApiProcess } from './api-process.js';
