export { createTestEnv } from './test-env.js';
export type { TestEnv } from './test-env.js';
export { signToken } from './tokens.js';
