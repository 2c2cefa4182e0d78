import { IllegalTransition } from './errors.js';

export type Actor = 'buyer' | 'merchant' | 'system' | 'payment' | 'warehouse' | 'admin';
/** `imported`: taken by another order system and imported into the order centre. */
export type OrderType = 'standard' | 'flash_sale' | 'presale' | 'virtual' | 'imported';

/**
 * Side effects a transition asks for; adapters outside the domain carry them out.
 * In the transition's own MySQL transaction: releaseStock (ledger rows, then Redis).
 * As jobs enqueued once it commits: the rest (each adapter is idempotent).
 */
export type Effect =
  | 'schedulePaymentDeadline'
  | 'releaseStock'
  /** placement reservations reserved -> sold; payment-time SKUs re-verified and deducted */
  | 'commitStock'
  /** one child order per (channel, merchant, warehouse) when the lines span several */
  | 'split'
  /** hand the order (or each child) to its warehouse */
  | 'requestFulfilment'
  /** a virtual order is delivered by the payment itself */
  | 'deliverDigital'
  | 'scheduleAutoConfirm'
  | 'scheduleCompletion'
  | 'scheduleBalanceDeadline'
  /** an approved return's parcel has RETURN_PARCEL_WINDOW_MS to reach the warehouse: then the return is closed */
  | 'scheduleReturnClose'
  /** a return request has RETURN_REVIEW_WINDOW_MS to be reviewed by the shop: then the system approves it */
  | 'scheduleReturnReview'
  | 'refundPayments'
  /** tell the warehouse that already has the order what it now ships and where (nothing: cancelled) */
  | 'updateFulfilment';

/** The effects that start a timer: a job on the timers queue, falling due at a deadline of the order's. */
export type TimerEffect = Extract<Effect, 'scheduleAutoConfirm' | 'scheduleCompletion' | 'scheduleBalanceDeadline' | 'scheduleReturnClose' | 'scheduleReturnReview'>;
const TIMER_EFFECTS: readonly Effect[] = ['scheduleAutoConfirm', 'scheduleCompletion', 'scheduleBalanceDeadline', 'scheduleReturnClose', 'scheduleReturnReview'] satisfies TimerEffect[];

/** The action each timer's job fires, as `system`, when it falls due (apps/worker's timers). */
export const TIMER_ACTIONS: Readonly<Record<TimerEffect, string>> = {
  scheduleAutoConfirm: 'auto_confirm',
  scheduleCompletion: 'complete',
  scheduleBalanceDeadline: 'expire_balance',
  scheduleReturnClose: 'close_return',
  scheduleReturnReview: 'approve_return',
};

export function startsATimer(effect: Effect): effect is TimerEffect {
  return TIMER_EFFECTS.includes(effect);
}

/**
 * When the timers an order's effects start fall due by MySQL's clock, the one their transitions
 * decide by (null: the order has no such deadline, having left the timer's status), and MySQL's
 * time they were read at.
 */
export interface TimersDue {
  now: Date;
  dueAt: Partial<Record<TimerEffect, Date | null>>;
}

/**
 * What the engine knows about an order besides its status, for guards. The repository
 * reads these in the transition's transaction.
 */
export interface OrderFacts {
  /** the order was split into child orders (its status now derives from theirs) */
  split: boolean;
  /** the order is a child of a split order */
  child: boolean;
}

/** A named precondition of a transition, pure over the order's facts. */
export interface Guard {
  name: string;
  test(facts: OrderFacts): boolean;
}

export const guards = {
  notSplit: { name: 'notSplit', test: (facts: OrderFacts) => !facts.split },
  notChild: { name: 'notChild', test: (facts: OrderFacts) => !facts.child },
} satisfies Record<string, Guard>;

export interface StateInfo {
  buyerLabel: string;
  merchantLabel: string;
  final?: boolean;
}

export interface TransitionRule<S extends string = string, A extends string = string> {
  from: S;
  action: A;
  to: S;
  actors: readonly Actor[];
  effects?: readonly Effect[];
  guard?: Guard;
}

/** An order type's life, as data: states with their labels, and the transition table. */
export interface OrderProcess<S extends string = string, A extends string = string> {
  type: string;
  initial: S;
  states: Readonly<Record<S, StateInfo>>;
  transitions: readonly TransitionRule<S, A>[];
  /**
   * The forward life in order (e.g. PAID, IN_FULFILLMENT, SHIPPED...): how far an order
   * has come, so a split parent's status derives from its children and a callback for
   * a step the order has already passed is recognised as a repeat.
   */
  forwardPath: readonly S[];
  /** Actions a successful payment fires, in the order a payable order meets them. */
  paymentActions: readonly A[];
}

export interface FiredTransition {
  from: string;
  action: string;
  to: string;
  actor: Actor;
  effects: readonly Effect[];
}

/**
 * One engine for every order type: it knows nothing about any type and only reads
 * the table it was given. Construction checks the table, so a broken process fails
 * at boot rather than on some buyer's order.
 */
export class OrderStateMachine {
  private readonly byStateAndAction = new Map<string, TransitionRule>();

  constructor(readonly process: OrderProcess) {
    const problems = checkProcess(process);
    if (problems.length > 0) throw new Error(`Order process '${process.type}' is invalid: ${problems.join('; ')}`);
    for (const rule of process.transitions) this.byStateAndAction.set(`${rule.from}\u0000${rule.action}`, rule);
  }

  /** Returns the transition to apply, or throws IllegalTransition: the caller changes nothing then. */
  fire(status: string, action: string, actor: Actor, facts: OrderFacts = NO_FACTS): FiredTransition {
    const rule = this.byStateAndAction.get(`${status}\u0000${action}`);
    if (!rule || !rule.actors.includes(actor) || (rule.guard && !rule.guard.test(facts))) throw new IllegalTransition(status, action, actor);
    return { from: rule.from, action: rule.action, to: rule.to, actor, effects: rule.effects ?? [] };
  }

  can(status: string, action: string, actor: Actor, facts: OrderFacts = NO_FACTS): boolean {
    const rule = this.byStateAndAction.get(`${status}\u0000${action}`);
    return rule !== undefined && rule.actors.includes(actor) && (!rule.guard || rule.guard.test(facts));
  }

  /** The rule of (status, action), whoever fires it; undefined when there is none. */
  rule(status: string, action: string): TransitionRule | undefined {
    return this.byStateAndAction.get(`${status}\u0000${action}`);
  }

  /** The action a successful payment fires in this status, or null when nothing is payable now. */
  paymentActionFor(status: string): string | null {
    return this.process.paymentActions.find((action) => this.can(status, action, 'payment')) ?? null;
  }

  /** Position on the forward life; -1 for a status off it (closed, after-sales). */
  progress(status: string): number {
    return (this.process.forwardPath as readonly string[]).indexOf(status);
  }

  /** The states a transition carrying this effect enters (where an order waits for the timer it schedules). */
  statusesEnteredWith(effect: Effect): string[] {
    return [...new Set(this.process.transitions.filter((r) => r.effects?.includes(effect)).map((r) => r.to))];
  }

  /**
   * Whether a step out of this status starts the timer again: a return under review or on its
   * way back, refused or received in part, delivers the order again, its after-sales window running again.
   */
  startsTimerFrom(status: string, timer: TimerEffect): boolean {
    return this.process.transitions.some((r) => r.from === status && r.effects?.includes(timer));
  }

  /** Every action of the table, for exhaustive checks. */
  actions(): string[] {
    return [...new Set(this.process.transitions.map((r) => r.action))];
  }

  states(): string[] {
    return Object.keys(this.process.states);
  }

  /** The actions an actor may take on an order in this state (for UIs and the API's `actions`). */
  allowedActions(status: string, actor: Actor): string[] {
    return this.process.transitions.filter((r) => r.from === status && r.actors.includes(actor)).map((r) => r.action);
  }

  /**
   * The shortest sequence of actions this actor may fire from `from` (the initial state) to
   * `target` (guards aside); null when the actor cannot bring an order there.
   */
  pathTo(target: string, actor: Actor, from: string = this.process.initial): FiredTransition[] | null {
    const paths = new Map<string, FiredTransition[]>([[from, []]]);
    const queue = [from];
    for (let state = queue.shift(); state !== undefined; state = queue.shift()) {
      if (state === target) return paths.get(state)!;
      for (const rule of this.process.transitions) {
        if (rule.from !== state || !rule.actors.includes(actor) || paths.has(rule.to)) continue;
        paths.set(rule.to, [...paths.get(state)!, { from: rule.from, action: rule.action, to: rule.to, actor, effects: rule.effects ?? [] }]);
        queue.push(rule.to);
      }
    }
    return null;
  }

  labels(status: string): StateInfo {
    const info = (this.process.states as Record<string, StateInfo>)[status];
    if (!info) throw new Error(`Order process '${this.process.type}' has no state '${status}'`);
    return info;
  }

  isFinal(status: string): boolean {
    return this.labels(status).final === true;
  }
}

const NO_FACTS: OrderFacts = { split: false, child: false };

/** Vendure-style boot check: every state reachable, every non-final state with a way out. */
export function checkProcess(process: OrderProcess): string[] {
  const states = Object.keys(process.states);
  const problems: string[] = [];
  if (!states.includes(process.initial)) problems.push(`initial state '${process.initial}' is not declared`);
  const seen = new Set<string>();
  for (const rule of process.transitions) {
    for (const state of [rule.from, rule.to]) {
      if (!states.includes(state)) problems.push(`transition ${rule.from} -${rule.action}-> ${rule.to} uses undeclared state '${state}'`);
    }
    if (rule.actors.length === 0) problems.push(`transition ${rule.from} -${rule.action}-> ${rule.to} has no actor`);
    const key = `${rule.from}/${rule.action}`;
    if (seen.has(key)) problems.push(`action '${rule.action}' is declared twice from '${rule.from}'`);
    seen.add(key);
  }
  const reachable = new Set([process.initial]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const rule of process.transitions) {
      if (reachable.has(rule.from) && !reachable.has(rule.to)) {
        reachable.add(rule.to);
        grew = true;
      }
    }
  }
  for (const state of process.forwardPath) {
    if (!states.includes(state)) problems.push(`forward path uses undeclared state '${state}'`);
  }
  for (const action of process.paymentActions) {
    if (!process.transitions.some((r) => r.action === action && r.actors.includes('payment'))) {
      problems.push(`payment action '${action}' is not fired by the payment actor anywhere`);
    }
  }
  for (const state of states) {
    const info = (process.states as Record<string, StateInfo>)[state];
    if (!reachable.has(state)) problems.push(`state '${state}' cannot be reached from '${process.initial}'`);
    const hasExit = process.transitions.some((r) => r.from === state);
    if (info?.final && hasExit) problems.push(`final state '${state}' has a way out`);
    if (!info?.final && !hasExit) problems.push(`state '${state}' is not final but has no way out`);
  }
  return problems;
}
