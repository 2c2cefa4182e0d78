import {
  ORDER_TYPES,
  offeredActions,
  stateMachineFor,
  type Actor,
  type Effect,
  type OrderFacts,
  type OrderStateMachine,
  type TransitionRule,
} from '@orders/domain';
import { describe, expect, it } from 'vitest';

/**
 * Exhaustive checks over every order type's table, by walking its graph: no I/O, no clock.
 * Each names what a buyer, a merchant or an operator would meet if it failed.
 */

const ACTORS: Actor[] = ['buyer', 'merchant', 'system', 'payment', 'warehouse', 'admin'];
const UNSPLIT: OrderFacts = { split: false, child: false };
const A_CHILD: OrderFacts = { split: false, child: true };

/** The action each timer's job fires (as `system`) when it falls due: apps/worker's timers and deadline jobs. */
const TIMER_ACTION: Partial<Record<Effect, string>> = {
  schedulePaymentDeadline: 'expire',
  scheduleBalanceDeadline: 'expire_balance',
  scheduleAutoConfirm: 'auto_confirm',
  scheduleCompletion: 'complete',
  scheduleReturnClose: 'close_return',
  scheduleReturnReview: 'approve_return',
};
const TIMERS = Object.keys(TIMER_ACTION) as Effect[];

const rulesOf = (machine: OrderStateMachine): readonly TransitionRule[] => machine.process.transitions;
const finals = (machine: OrderStateMachine) => machine.states().filter((status) => machine.isFinal(status));

/** The statuses an order of this type can be in: those reachable from its initial status. */
function reachable(machine: OrderStateMachine): Set<string> {
  const seen = new Set([machine.process.initial as string]);
  for (const queue = [...seen]; queue.length > 0; ) {
    const status = queue.shift()!;
    for (const rule of rulesOf(machine)) {
      if (rule.from === status && !seen.has(rule.to)) {
        seen.add(rule.to);
        queue.push(rule.to);
      }
    }
  }
  return seen;
}

describe('every order type’s table: no order stuck, no status unnamed', () => {
  it.each(ORDER_TYPES)('%s: from every status an unsplit order can be in, some final status is reachable by steps that change it (no trap of self-loops or cycles)', (type) => {
    const machine = stateMachineFor(type);
    const moving = rulesOf(machine).filter((rule) => rule.from !== rule.to && (!rule.guard || rule.guard.test(UNSPLIT)));
    const canEnd = new Set(finals(machine));
    for (let grew = true; grew; ) {
      grew = false;
      for (const rule of moving) {
        if (canEnd.has(rule.to) && !canEnd.has(rule.from)) {
          canEnd.add(rule.from);
          grew = true;
        }
      }
    }
    expect([...reachable(machine)].filter((status) => !canEnd.has(status))).toEqual([]);
    // and a final status is final: no step leaves it, not even one back to itself
    expect(rulesOf(machine).filter((rule) => machine.isFinal(rule.from)).map((rule) => `${rule.from} -${rule.action}->`)).toEqual([]);
  });

  it.each(ORDER_TYPES)('%s: every status a step leads to, and every status of the forward life, has a buyer and a merchant label', (type) => {
    const machine = stateMachineFor(type);
    const shown = new Set([machine.process.initial, ...rulesOf(machine).map((rule) => rule.to), ...machine.process.forwardPath]);
    for (const status of shown) {
      const { buyerLabel, merchantLabel } = machine.labels(status);
      for (const label of [buyerLabel, merchantLabel]) {
        expect(typeof label, `${type} ${status}`).toBe('string');
        expect(label.trim(), `${type} ${status}`).not.toBe('');
        expect(label, `${type} ${status}`).not.toMatch(/undefined|null/);
      }
    }
  });

  it.each(ORDER_TYPES)('%s: the forward life is a walk of the table, each step one transition on from the last', (type) => {
    const machine = stateMachineFor(type);
    const path = machine.process.forwardPath;
    expect(path[0]).toBe(machine.process.initial);
    expect(machine.isFinal(path.at(-1)!)).toBe(true);
    for (let i = 1; i < path.length; i++) expect(rulesOf(machine).some((rule) => rule.from === path[i - 1] && rule.to === path[i]), `${type} ${path[i - 1]} -> ${path[i]}`).toBe(true);
  });

  it.each(ORDER_TYPES)('%s: an order waiting for its money back (REFUNDING) or taken back whole (RETURNED) got there by a step that asks the payment system to pay it', (type) => {
    const machine = stateMachineFor(type);
    const into = rulesOf(machine).filter((rule) => ['REFUNDING', 'RETURNED'].includes(rule.to) && rule.from !== rule.to);
    for (const rule of into) expect(rule.effects ?? [], `${type} ${rule.from} -${rule.action}-> ${rule.to}`).toContain('refundPayments');
  });
});

describe('every order type’s table: what each role is offered is what it can do', () => {
  it.each(ORDER_TYPES)('%s: on an unsplit order and on a child, each role is offered exactly the actions it may fire from that status (no button answering 409, no action without a button)', (type) => {
    const machine = stateMachineFor(type);
    for (const status of machine.states()) {
      for (const actor of ACTORS) {
        for (const facts of [UNSPLIT, A_CHILD]) {
          const offered = offeredActions(machine, status, actor, facts, []);
          const firable = machine.actions().filter((action) => machine.can(status, action, actor, facts));
          expect(new Set(offered), `${type} ${status} ${actor} ${JSON.stringify(facts)}`).toEqual(new Set(firable));
          for (const action of offered) expect(machine.fire(status, action, actor, facts).from).toBe(status);
        }
      }
    }
  });

  /**
   * How each actor reaches the table (API.md): a buyer through its order routes, the payment and warehouse systems
   * through their callbacks' events, merchants and admins through their routes or POST /v1/orders/:id/actions/:action
   * (any action), the system through its jobs (any action).
   */
  const REACHED_BY: Partial<Record<Actor, readonly string[]>> = {
    // cancel (a paid order's cancel is its refund), refunds (refund_lines, or refund of every unit left), address, confirm-receipt, returns
    buyer: ['cancel', 'refund', 'refund_lines', 'change_address', 'confirm_receipt', 'request_return'],
    // SUCCEEDED: the order's payment action; a refund's confirmation
    payment: ['pay', 'pay_deposit', 'refund_succeeded'],
    // PICKED, PACKED, SHIPPED, DELIVERED, RETURN_RECEIVED (whole or in part)
    warehouse: ['pick', 'pack', 'ship', 'deliver', 'receive_return', 'receive_partial_return'],
  };

  it.each(ORDER_TYPES)('%s: a buyer, the payment system and the warehouse are allowed only actions they have a route or a callback event for', (type) => {
    const machine = stateMachineFor(type);
    for (const [actor, reachable] of Object.entries(REACHED_BY) as [Actor, readonly string[]][]) {
      const allowed = [...new Set(rulesOf(machine).filter((rule) => rule.actors.includes(actor)).map((rule) => rule.action))];
      expect(allowed.filter((action) => !reachable.includes(action)), `${type} ${actor}`).toEqual([]);
    }
    // and what a payment fires is the type's payment action
    for (const rule of rulesOf(machine).filter((r) => r.actors.includes('payment') && r.action !== 'refund_succeeded')) {
      expect(machine.process.paymentActions, `${type} ${rule.action}`).toContain(rule.action);
    }
  });

  it.each(ORDER_TYPES)('%s: every action of the table is fired by someone from somewhere an order can be', (type) => {
    const machine = stateMachineFor(type);
    const statuses = reachable(machine);
    for (const action of machine.actions()) {
      expect(
        rulesOf(machine).some((rule) => rule.action === action && statuses.has(rule.from) && rule.actors.length > 0),
        `${type} ${action}`,
      ).toBe(true);
    }
  });
});

describe('every order type’s table: timers', () => {
  it.each(ORDER_TYPES)('%s: a timer started on entering a status can fire its own action there as the system (else the job does nothing and the order stays)', (type) => {
    const machine = stateMachineFor(type);
    for (const rule of rulesOf(machine)) {
      for (const effect of (rule.effects ?? []).filter((e) => TIMERS.includes(e))) {
        for (const facts of [UNSPLIT, A_CHILD]) {
          expect(machine.can(rule.to, TIMER_ACTION[effect]!, 'system', facts), `${type} ${rule.from} -${rule.action}-> ${rule.to} starts ${effect}`).toBe(true);
        }
      }
    }
  });

  it.each(ORDER_TYPES)('%s: a status left by a timer’s action is entered only by steps that start that timer (else an order waits for a job no one enqueued)', (type) => {
    const machine = stateMachineFor(type);
    for (const effect of TIMERS) {
      const action = TIMER_ACTION[effect]!;
      const waiting = machine.states().filter((status) => machine.rule(status, action)?.actors.includes('system'));
      // an imported order's `system` is its channel (docs/order-centre.md): the channel, or its merchant, completes a
      // delivered one (DELIVERED -complete->), and no timer of ours does; it starts no timer at all (checked below)
      if (type === 'imported' && effect === 'scheduleCompletion') {
        expect(waiting).toEqual(['DELIVERED']);
        expect(machine.rule('DELIVERED', 'complete')?.actors).toContain('merchant');
        continue;
      }
      for (const status of waiting) {
        const into = rulesOf(machine).filter((rule) => rule.to === status && rule.from !== status);
        for (const rule of into) expect(rule.effects ?? [], `${type} ${rule.from} -${rule.action}-> ${status} waits for ${effect}`).toContain(effect);
      }
    }
  });

  it('an imported order starts no timer of ours: its channel moves it on', () => {
    const effects = rulesOf(stateMachineFor('imported')).flatMap((rule) => rule.effects ?? []);
    expect(effects.filter((effect) => TIMERS.includes(effect))).toEqual([]);
  });
});

type Deduction = 'placement' | 'payment';
/** Where the order's units stand: reserved at checkout (placement), none yet (payment), sold, or released. */
type Units = 'reserved' | 'none' | 'sold' | 'released';

/**
 * Walks every (status, units) an order can reach from its placement, applying each step's stock effects in order,
 * and returns the faults: a release of units already released or sold, a commit of units not reserved (placement) or
 * already sold, a final status with units still reserved. A paid order's refund restocks through its route, not an effect.
 */
function stockFaults(machine: OrderStateMachine, deduction: Deduction): string[] {
  const faults = new Set<string>();
  const start = `${machine.process.initial}|${deduction === 'placement' ? 'reserved' : 'none'}`;
  const seen = new Set([start]);
  for (const queue = [start]; queue.length > 0; ) {
    const [status, at] = queue.shift()!.split('|') as [string, Units];
    if (machine.isFinal(status) && at === 'reserved') faults.add(`ends ${status} with its units still reserved`);
    for (const rule of rulesOf(machine).filter((r) => r.from === status)) {
      let units: Units = at;
      for (const effect of rule.effects ?? []) {
        const step = `${rule.from} -${rule.action}-> ${rule.to}`;
        if (effect === 'releaseStock') {
          if (units === 'sold') faults.add(`${step} releases units already sold`);
          else if (units === 'released') faults.add(`${step} releases its units a second time`);
          else units = deduction === 'placement' ? 'released' : 'none';
        } else if (effect === 'commitStock') {
          if (units === 'reserved' || (deduction === 'payment' && units === 'none')) units = 'sold';
          else faults.add(`${step} commits units that are ${units}`);
        }
      }
      const next = `${rule.to}|${units}`;
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return [...faults];
}

describe('every order type’s table: stock along every path from placement to a final status', () => {
  const stocked = ORDER_TYPES.filter((type) => type !== 'imported');
  it.each(stocked.flatMap((type) => (['placement', 'payment'] as const).map((deduction) => [type, deduction] as const)))(
    '%s, %s deduction: units reserved are released or sold exactly once, never released once sold, never left reserved',
    (type, deduction) => {
      expect(stockFaults(stateMachineFor(type), deduction)).toEqual([]);
    },
  );

  it('an imported order touches no stock of ours: its stock is its channel’s (docs/order-centre.md)', () => {
    const effects = rulesOf(stateMachineFor('imported')).flatMap((rule) => rule.effects ?? []);
    expect(effects.filter((effect) => ['releaseStock', 'commitStock'].includes(effect))).toEqual([]);
  });
});

/** A rule as data, statuses renamed, for comparing rules two tables share. */
const shape = (rule: TransitionRule, rename: Record<string, string> = {}) => ({
  from: rename[rule.from] ?? rule.from,
  action: rule.action,
  to: rename[rule.to] ?? rule.to,
  actors: [...rule.actors].sort(),
  effects: [...(rule.effects ?? [])],
  guard: rule.guard?.name ?? null,
});

describe('rules the types share are written once', () => {
  const standard = stateMachineFor('standard');
  const retailRule = (from: string, action: string) => shape(standard.rule(from, action)!);

  it('a flash sale runs the standard life, labels and all', () => {
    const flash = stateMachineFor('flash_sale');
    expect(flash.process.transitions.map((rule) => shape(rule))).toEqual(standard.process.transitions.map((rule) => shape(rule)));
    expect(flash.process.states).toEqual(standard.process.states);
    expect(flash.process.forwardPath).toEqual(standard.process.forwardPath);
  });

  it('a presale before its deposit is cancelled, expires and changes address as an unpaid retail order; after its balance it lives the retail life', () => {
    const presale = stateMachineFor('presale');
    const asRetail = { PENDING_DEPOSIT: 'PENDING_PAYMENT' };
    for (const action of ['persist', 'cancel', 'expire', 'change_address']) {
      const from = action === 'persist' ? 'ACCEPTED' : 'PENDING_DEPOSIT';
      expect(shape(presale.rule(from, action)!, asRetail), action).toEqual(retailRule(action === 'persist' ? 'ACCEPTED' : 'PENDING_PAYMENT', action));
    }
    // the balance is the retail payment, from DEPOSIT_PAID
    expect(shape(presale.rule('DEPOSIT_PAID', 'pay')!, { DEPOSIT_PAID: 'PENDING_PAYMENT' })).toEqual(retailRule('PENDING_PAYMENT', 'pay'));
    const paidOn = new Set(standard.process.forwardPath.slice(2));
    const afterSales = ['REFUNDING', 'RETURN_REQUESTED', 'RETURNING'];
    const retailAfterPayment = standard.process.transitions.filter((rule) => paidOn.has(rule.from) || afterSales.includes(rule.from));
    for (const rule of retailAfterPayment) expect(shape(presale.rule(rule.from, rule.action) ?? rule), `${rule.from} ${rule.action}`).toEqual(shape(rule));
    // and nothing of its own from PAID on but what retail has
    for (const rule of presale.process.transitions.filter((r) => paidOn.has(r.from) || afterSales.includes(r.from))) {
      expect(standard.rule(rule.from, rule.action), `${rule.from} ${rule.action}`).toBeDefined();
    }
  });

  it('a virtual order is unpaid, cancelled, expired and refunded as a retail one; it keeps no address and splits nothing', () => {
    const virtual = stateMachineFor('virtual');
    for (const [from, action] of [['ACCEPTED', 'persist'], ['PENDING_PAYMENT', 'cancel'], ['PENDING_PAYMENT', 'expire']] as const) {
      expect(shape(virtual.rule(from, action)!), `${from} ${action}`).toEqual(retailRule(from, action));
    }
    // a virtual order is never split (nothing ships): the retail guard against a split order has nothing to guard,
    // and no warehouse is told of its refund
    expect({ ...shape(virtual.rule('PAID', 'refund')!), guard: 'notSplit' }).toEqual({ ...retailRule('PAID', 'refund'), effects: ['refundPayments'] });
    expect(retailRule('PAID', 'refund').effects).toEqual(['refundPayments', 'updateFulfilment']);
    expect({ ...shape(virtual.rule('REFUNDING', 'refund_succeeded')!), guard: 'notSplit' }).toEqual(retailRule('REFUNDING', 'refund_succeeded'));
    // paying delivers it rather than splitting it for warehouses; bought without a delivery address, it has none to change
    expect(shape(virtual.rule('PENDING_PAYMENT', 'pay')!)).toEqual({ ...retailRule('PENDING_PAYMENT', 'pay'), effects: ['commitStock', 'deliverDigital'] });
    expect(virtual.rule('PENDING_PAYMENT', 'change_address')).toBeUndefined();
  });

  it.each(ORDER_TYPES)('%s: a status the retail types have too reads as theirs to buyers and merchants (a virtual order’s PAID says it is being delivered)', (type) => {
    const machine = stateMachineFor(type);
    for (const status of machine.states().filter((s) => standard.states().includes(s))) {
      if (type === 'virtual' && status === 'PAID') continue;
      expect(machine.labels(status), `${type} ${status}`).toEqual(standard.labels(status));
    }
  });
});
