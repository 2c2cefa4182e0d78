import { IllegalTransition } from './errors.js';

export type Actor = 'buyer' | 'merchant' | 'system' | 'payment' | 'warehouse' | 'admin';
export type OrderType = 'standard' | 'flash_sale';

/** Side effects a transition asks for; adapters outside the domain carry them out. */
export type Effect = 'schedulePaymentDeadline' | 'releaseStock';

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
}

/** An order type's life, as data: states with their labels, and the transition table. */
export interface OrderProcess<S extends string = string, A extends string = string> {
  type: string;
  initial: S;
  states: Readonly<Record<S, StateInfo>>;
  transitions: readonly TransitionRule<S, A>[];
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
  fire(status: string, action: string, actor: Actor): FiredTransition {
    const rule = this.byStateAndAction.get(`${status}\u0000${action}`);
    if (!rule || !rule.actors.includes(actor)) throw new IllegalTransition(status, action, actor);
    return { from: rule.from, action: rule.action, to: rule.to, actor, effects: rule.effects ?? [] };
  }

  can(status: string, action: string, actor: Actor): boolean {
    const rule = this.byStateAndAction.get(`${status}\u0000${action}`);
    return rule !== undefined && rule.actors.includes(actor);
  }

  /** The actions an actor may take on an order in this state (for UIs and the API's `actions`). */
  allowedActions(status: string, actor: Actor): string[] {
    return this.process.transitions.filter((r) => r.from === status && r.actors.includes(actor)).map((r) => r.action);
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
  for (const state of states) {
    const info = (process.states as Record<string, StateInfo>)[state];
    if (!reachable.has(state)) problems.push(`state '${state}' cannot be reached from '${process.initial}'`);
    const hasExit = process.transitions.some((r) => r.from === state);
    if (info?.final && hasExit) problems.push(`final state '${state}' has a way out`);
    if (!info?.final && !hasExit) problems.push(`state '${state}' is not final but has no way out`);
  }
  return problems;
}
