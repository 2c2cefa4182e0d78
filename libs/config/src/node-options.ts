/**
 * The V8 flags every service process starts with: semi-spaces of 64 MB instead of V8's
 * 16 for the young generation. A checkout or a persisted order makes many short-lived
 * objects, and fewer scavenges bought ~20 % on sold-out answers and 8–29 % on the drain in
 * alternating bench runs (bench/README item 19), for ~50–150 MB more memory per process.
 */
export const SERVICE_NODE_OPTIONS = '--max-semi-space-size=64';

/** NODE_OPTIONS for a service process: ours first, so an operator's own flags, later, win. */
export function serviceNodeOptions(operatorOptions: string | undefined): string {
  return operatorOptions ? `${SERVICE_NODE_OPTIONS} ${operatorOptions}` : SERVICE_NODE_OPTIONS;
}
