import { DomainError } from './errors.js';

/**
 * The shop's checkout block lists, from configuration. Its velocity rule (reason 'velocity')
 * is judged where a buyer's attempts are counted, with the reservation (the api's CheckoutVelocity).
 */
export interface RiskPolicy {
  blockedUsers: ReadonlySet<string>;
  blockedDevices: ReadonlySet<string>;
}

export interface CheckoutAttempt {
  userId: string;
  /** the client's device id (x-device-id), when it sent one */
  deviceId: string | null;
}

export type RiskReason = 'blocked_user' | 'blocked_device' | 'velocity';

const DETAIL: Record<RiskReason, string> = {
  blocked_user: 'This account may not place orders; contact customer service',
  blocked_device: 'Orders from this device are not accepted; contact customer service',
  velocity: 'Too many checkouts from this account in a short time; try again later',
};

export class CheckoutRefused extends DomainError {
  readonly code = 'RISK_REJECTED';
  constructor(readonly reason: RiskReason) {
    super(DETAIL[reason]);
  }
}

/** The first block list a checkout is on, or null when it may go on to the reservation. */
export function riskOfCheckout(policy: RiskPolicy, attempt: CheckoutAttempt): RiskReason | null {
  if (policy.blockedUsers.has(attempt.userId)) return 'blocked_user';
  if (attempt.deviceId !== null && policy.blockedDevices.has(attempt.deviceId)) return 'blocked_device';
  return null;
}
