import { ORDER_TYPES, childRefusing, deriveParentStatus, offeredActions, stateMachineFor, type Actor, type OrderFacts, type OrderStateMachine, type OrderType } from '@orders/domain';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/**
 * split-order-actions.test.ts checks the actions offered on a split standard order (as admin). A
 * presale is split too, once its balance is paid: the same agreement must hold for it, for every
 * other type that splits, and for every role that sees an order's actions.
 */

const SPLIT: OrderFacts = { split: true, child: false };
const A_CHILD: OrderFacts = { split: false, child: true };
/** The roles offered actions on an order: a buyer's order routes, a merchant's and an admin's actions list, the system's jobs. */
const VIEWS: readonly Actor[] = ['buyer', 'merchant', 'admin', 'system'];
/** Actions on the whole split order that its routes carry out on its children (split-order-actions.ts). */
const CARRIED = ['refund', 'change_address'] as const;
/** A refund of some lines, carried out on the children holding them: any one child still in its warehouse may take it. */
const REFUND_LINES = 'refund_lines';
/** Children each role may refund lines of (a refund of all a child has left refunds it whole): a parcel still in the warehouse. */
const CHILD_REFUNDS_LINES: Record<string, readonly string[]> = { buyer: ['PAID', 'IN_FULFILLMENT'], merchant: ['PAID', 'IN_FULFILLMENT'], admin: ['PAID', 'IN_FULFILLMENT'], system: [] };
/** Children the cancel and address routes leave as they are: closed before they shipped, or refunded whole and awaiting the payment system. */
const CLOSED_BEFORE_SHIPPING = ['CANCELLED', 'REFUNDING', 'REFUNDED'];
/**
 * What each role may do to a child of a split order, from the retail fulfilment table every shipped
 * type shares: cancel (refund) or readdress a parcel still in the warehouse; the system refunds only
 * one not yet handed over (a payment-time SKU found sold out).
 */
const CHILD_ALLOWS: Record<(typeof CARRIED)[number], Record<string, readonly string[]>> = {
  refund: { buyer: ['PAID', 'IN_FULFILLMENT'], merchant: ['PAID', 'IN_FULFILLMENT'], admin: ['PAID', 'IN_FULFILLMENT'], system: ['PAID'] },
  change_address: { buyer: ['PAID', 'IN_FULFILLMENT'], merchant: [], admin: ['PAID', 'IN_FULFILLMENT'], system: [] },
};

/** Whether an order of this type is split once paid: its payment asks for the split. */
const splits = (machine: OrderStateMachine) => machine.process.transitions.some((rule) => rule.effects?.includes('split'));
const SPLIT_TYPES = ORDER_TYPES.filter((type) => splits(stateMachineFor(type)));

/** The statuses a child reaches from PAID (where the split leaves it), by any actor, its guards read as a child's. */
function childStatuses(machine: OrderStateMachine): string[] {
  const reached = new Set(['PAID']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const rule of machine.process.transitions) {
      if (!reached.has(rule.from) || reached.has(rule.to) || (rule.guard && !rule.guard.test(A_CHILD))) continue;
      reached.add(rule.to);
      grew = true;
    }
  }
  return [...reached];
}

const children = (...statuses: string[]) => statuses.map((status, i) => ({ orderId: `child-${i + 1}`, status }));
const RETURN_DECISIONS = ['approve_return', 'refuse_return', 'close_return'];
const offeredOnSplit = (type: OrderType, actor: Actor, ...statuses: string[]) => {
  const machine = stateMachineFor(type);
  return offeredActions(machine, deriveParentStatus(machine, statuses), actor, SPLIT, children(...statuses));
};

describe('the actions offered on a split order of every type that splits, to every role', () => {
  it('splits standard, flash-sale and presale orders once paid (a presale once its balance is), never virtual or imported ones', () => {
    expect(SPLIT_TYPES).toEqual(['standard', 'flash_sale', 'presale']);
    const presale = stateMachineFor('presale');
    expect(presale.fire('DEPOSIT_PAID', 'pay', 'payment').effects).toContain('split');
    expect(presale.fire('PENDING_DEPOSIT', 'pay_deposit', 'payment').effects).not.toContain('split');
  });

  it.each(SPLIT_TYPES)('%s: a child lives the retail life after its split, never back to a deposit', (type) => {
    expect(new Set(childStatuses(stateMachineFor(type)))).toEqual(
      new Set(['PAID', 'IN_FULFILLMENT', 'SHIPPED', 'DELIVERED', 'COMPLETED', 'REFUNDING', 'REFUNDED', 'RETURN_REQUESTED', 'RETURNING', 'RETURNED']),
    );
  });

  it.each(SPLIT_TYPES)('%s: the children statuses each role may cancel or readdress from are the ones its table allows a child', (type) => {
    const machine = stateMachineFor(type);
    for (const action of CARRIED) {
      for (const actor of VIEWS) {
        const allowed = childStatuses(machine).filter((status) => machine.can(status, action, actor, A_CHILD));
        expect(allowed, `${type} ${action} ${actor}`).toEqual(CHILD_ALLOWS[action][actor]);
      }
    }
  });

  it('leaves cancelling and a new address off a split presale once a child has shipped, to the buyer and the admin alike, and offers refunding the lines of the child still in its warehouse', () => {
    const presale = stateMachineFor('presale');
    expect(deriveParentStatus(presale, ['SHIPPED', 'IN_FULFILLMENT'])).toBe('IN_FULFILLMENT');
    expect(offeredOnSplit('presale', 'buyer', 'IN_FULFILLMENT', 'IN_FULFILLMENT')).toEqual(['refund_lines', 'change_address', 'refund']);
    expect(offeredOnSplit('presale', 'buyer', 'SHIPPED', 'IN_FULFILLMENT')).toEqual(['refund_lines']);
    expect(offeredOnSplit('presale', 'admin', 'SHIPPED', 'IN_FULFILLMENT')).toEqual(['refund_lines']);
    expect(childRefusing(presale, 'refund', 'buyer', children('IN_FULFILLMENT', 'SHIPPED'))).toEqual({ orderId: 'child-2', status: 'SHIPPED' });
    // a merchant cancels a split presale whose children wait for their warehouse, but never readdresses it
    expect(offeredOnSplit('presale', 'merchant', 'PAID', 'PAID')).toEqual(['refund', 'refund_lines']);
    // the system refunds only children not yet handed to their warehouse
    expect(offeredOnSplit('presale', 'system', 'PAID', 'PAID')).toEqual(['refund']);
    expect(offeredOnSplit('presale', 'system', 'PAID', 'IN_FULFILLMENT')).toEqual([]);
    expect(childRefusing(presale, 'refund', 'system', children('PAID', 'IN_FULFILLMENT'))).toEqual({ orderId: 'child-2', status: 'IN_FULFILLMENT' });
  });

  describe.each(SPLIT_TYPES)('%s, whatever its children', (type) => {
    const machine = stateMachineFor(type);
    const statuses = fc.array(fc.constantFrom(...childStatuses(machine)), { minLength: 1, maxLength: 4 });

    it('offers each role only actions no child refuses and that the order’s table has for its derived status and that role', () => {
      fc.assert(
        fc.property(statuses, (statuses) => {
          const parent = deriveParentStatus(machine, statuses);
          for (const actor of VIEWS) {
            for (const action of offeredOnSplit(type, actor, ...statuses)) {
              const where = `${type} ${actor} ${action} on [${statuses.join(', ')}] (order ${parent})`;
              expect(childRefusing(machine, action, actor, children(...statuses)), where).toBeNull();
              // carried to the children, the order fires it not itself (guards aside); its own, it fires it as a split order
              if ([...CARRIED, REFUND_LINES].includes(action)) expect(machine.rule(parent, action)?.actors, where).toContain(actor);
              else expect(machine.can(parent, action, actor, SPLIT), where).toBe(true);
            }
          }
        }),
      );
    });

    it('offers each role exactly what the cancel, refunds and address routes then carry out on the children, and the order’s own actions its table lets it fire', () => {
      fc.assert(
        fc.property(statuses, (statuses) => {
          const parent = deriveParentStatus(machine, statuses);
          for (const actor of VIEWS) {
            const offered = offeredOnSplit(type, actor, ...statuses);
            const where = `${type} ${actor} on [${statuses.join(', ')}] (order ${parent})`;
            const mayAct = (action: string) => machine.rule(parent, action)?.actors.includes(actor) ?? false;
            // every child but those closed before they shipped is moved, each one in a status the role may move it from
            const moved = statuses.filter((status) => !CLOSED_BEFORE_SHIPPING.includes(status));
            for (const action of CARRIED) {
              const childrenAllow = moved.every((status) => CHILD_ALLOWS[action][actor]!.includes(status));
              expect(offered.includes(action), `${where}: ${action}`).toBe(mayAct(action) && moved.length > 0 && childrenAllow);
              expect(childRefusing(machine, action, actor, children(...statuses)) === null, `${where}: ${action} refused`).toBe(childrenAllow);
            }
            const refundsLines = statuses.some((status) => CHILD_REFUNDS_LINES[actor]!.includes(status));
            expect(offered.includes(REFUND_LINES), `${where}: ${REFUND_LINES}`).toBe(mayAct(REFUND_LINES) && refundsLines);
            for (const action of machine.allowedActions(parent, actor).filter((a) => ![...CARRIED, REFUND_LINES, ...RETURN_DECISIONS].includes(a))) {
              expect(offered.includes(action), `${where}: ${action}`).toBe(machine.can(parent, action, actor, SPLIT));
              expect(childRefusing(machine, action, actor, children(...statuses)), `${where}: ${action}`).toBeNull();
            }
            // a decision on a return is each child's, from its own status (returnDecisionsOnChildren), never the whole order's
            expect(offered.filter((action) => RETURN_DECISIONS.includes(action)), where).toEqual([]);
          }
        }),
      );
    });
  });
});
