import { DomainError } from './errors.js';

/** The shop's checkout risk rules, from configuration. */
export interface RiskPolicy {
  blockedUsers: ReadonlySet<string>;
  blockedDevices: ReadonlySet<string>;
  /** checkout attempts one buyer may make per velocity window; 0 turns the rule off */
  maxCheckoutsPerWindow: number;
}

export interface CheckoutAttempt {
  userId: string;
  /** the client's device id (x-device-id), when it sent one */
  deviceId: string | null;
  /** this buyer's checkout attempts in the current window, this one included */
  attemptsInWindow: number;
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

/** The first rule a checkout breaks, or null when it may go on to the reservation. */
export function riskOfCheckout(policy: RiskPolicy, attempt: CheckoutAttempt): RiskReason | null {
  if (policy.blockedUsers.has(attempt.userId)) return 'blocked_user';
  if (attempt.deviceId !== null && policy.blockedDevices.has(attempt.deviceId)) return 'blocked_device';
  if (policy.maxCheckoutsPerWindow > 0 && attempt.attemptsInWindow > policy.maxCheckoutsPerWindow) return 'velocity';
  return null;
}
