import { IllegalTransition, childRefusing, deriveParentStatus, offeredActions, offeredOnOwnChildren, returnDecisionsOnChildren, stateMachineFor } from '@orders/domain';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const standard = stateMachineFor('standard');
const SPLIT = { split: true, child: false };
/** Statuses a child of a split order takes once the order is paid. */
const CHILD_STATUSES = ['PAID', 'IN_FULFILLMENT', 'SHIPPED', 'DELIVERED', 'COMPLETED', 'REFUNDING', 'REFUNDED', 'RETURN_REQUESTED', 'RETURNING', 'RETURNED'];
/** What the cancel and address routes move a child from: a paid parcel still in the warehouse. */
const UNSHIPPED = new Set(['PAID', 'IN_FULFILLMENT']);
const ACTORS = ['buyer', 'merchant', 'admin'] as const;

const children = (...statuses: string[]) => statuses.map((status, i) => ({ orderId: `child-${i + 1}`, status }));
const offeredOnSplit = (...statuses: string[]) => offeredActions(standard, deriveParentStatus(standard, statuses), 'admin', SPLIT, children(...statuses));

describe('the actions offered on a split order as a whole', () => {
  it('leaves out cancelling and a new address once a child has shipped, though the order still reads IN_FULFILLMENT, and offers refunding the lines of the child still in its warehouse', () => {
    expect(deriveParentStatus(standard, ['SHIPPED', 'IN_FULFILLMENT'])).toBe('IN_FULFILLMENT');
    expect(offeredOnSplit('IN_FULFILLMENT', 'IN_FULFILLMENT')).toEqual(['refund_lines', 'change_address', 'refund']);
    expect(offeredOnSplit('SHIPPED', 'IN_FULFILLMENT')).toEqual(['refund_lines']);
    expect(childRefusing(standard, 'refund', 'admin', children('IN_FULFILLMENT', 'SHIPPED'))).toEqual({ orderId: 'child-2', status: 'SHIPPED' });
    expect(childRefusing(standard, 'refund', 'admin', children('IN_FULFILLMENT', 'REFUNDED'))).toBeNull();
    // the order's own actions are not carried to its children: no child refuses them
    expect(childRefusing(standard, 'approve_return', 'admin', children('SHIPPED'))).toBeNull();
  });

  it('leaves out a new address once a child has shipped, though it has since completed or been returned; a child refunded before it shipped does not count', () => {
    for (const shipped of ['COMPLETED', 'RETURNED']) {
      expect(deriveParentStatus(standard, [shipped, 'IN_FULFILLMENT'])).toBe('IN_FULFILLMENT');
      expect(offeredOnSplit(shipped, 'IN_FULFILLMENT')).not.toContain('change_address');
      expect(childRefusing(standard, 'change_address', 'admin', children('IN_FULFILLMENT', shipped))).toEqual({ orderId: 'child-2', status: shipped });
    }
    expect(offeredOnSplit('REFUNDED', 'IN_FULFILLMENT')).toContain('change_address');
    expect(childRefusing(standard, 'change_address', 'admin', children('IN_FULFILLMENT', 'REFUNDED'))).toBeNull();
  });

  it('offers a new address while a child refunded whole awaits the payment system (the order reads REFUNDING), not once no child is left to ship', () => {
    expect(deriveParentStatus(standard, ['REFUNDING', 'IN_FULFILLMENT'])).toBe('REFUNDING');
    expect(offeredOnSplit('REFUNDING', 'IN_FULFILLMENT')).toContain('change_address');
    expect(childRefusing(standard, 'change_address', 'admin', children('REFUNDING', 'IN_FULFILLMENT'))).toBeNull();
    expect(offeredOnSplit('REFUNDING', 'REFUNDED')).toEqual([]);
    // an order refunded whole, or a child, takes none: nothing of it is left to ship
    expect(standard.can('REFUNDING', 'change_address', 'admin', { split: false, child: false })).toBe(false);
    expect(standard.can('REFUNDING', 'change_address', 'admin', { split: false, child: true })).toBe(false);
  });

  it('offers cancelling a split order whose children wait for their warehouse (PAID), which the order itself never fires', () => {
    expect(standard.can('PAID', 'refund', 'admin', SPLIT)).toBe(false);
    expect(offeredOnSplit('PAID', 'PAID')).toEqual(['refund', 'refund_lines', 'change_address']);
    // nor once its children are in the warehouse: its cancel is carried out on them, never refunds it whole
    expect(standard.can('IN_FULFILLMENT', 'refund', 'admin', SPLIT)).toBe(false);
    expect(offeredOnSplit('IN_FULFILLMENT', 'IN_FULFILLMENT')).toEqual(['refund_lines', 'change_address', 'refund']);
    // an unsplit order: its own table row, guards and all
    expect(offeredActions(standard, 'PAID', 'admin', { split: false, child: false }, [])).toEqual(['refund', 'refund_lines', 'change_address']);
  });

  it('offers on a split order, whatever its children, exactly what the cancel, refunds and address routes then carry out on them', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...CHILD_STATUSES), { minLength: 1, maxLength: 4 }), fc.constantFrom(...ACTORS), (statuses, actor) => {
        const offered = offeredActions(standard, deriveParentStatus(standard, statuses), actor, SPLIT, children(...statuses));
        // the routes decide by the children alone: the order's own status follows the least advanced one, or a return under way
        const mayAct = (action: string) => standard.rule('IN_FULFILLMENT', action)!.actors.includes(actor);
        // the cancel route refunds every child not closed before it shipped, each one still unshipped
        const cancelled = statuses.filter((status) => !['CANCELLED', 'REFUNDING', 'REFUNDED'].includes(status));
        expect(offered.includes('refund')).toBe(mayAct('refund') && cancelled.length > 0 && cancelled.every((status) => UNSHIPPED.has(status)));
        // the address route moves every child but those closed before they shipped (a refund still awaiting the payment system too), each one still unshipped
        const readdressed = statuses.filter((status) => !['CANCELLED', 'REFUNDING', 'REFUNDED'].includes(status));
        expect(offered.includes('change_address')).toBe(mayAct('change_address') && readdressed.length > 0 && readdressed.every((status) => UNSHIPPED.has(status)));
        // the refunds route refunds lines of the children still unshipped, whatever the others became
        expect(offered.includes('refund_lines')).toBe(mayAct('refund_lines') && statuses.some((status) => UNSHIPPED.has(status)));
      }),
    );
  });

  it('offers cancelling the rest and refunding lines of a child still in its warehouse while another child\'s refund or return is under way', () => {
    expect(deriveParentStatus(standard, ['REFUNDING', 'IN_FULFILLMENT'])).toBe('REFUNDING');
    expect(offeredOnSplit('REFUNDING', 'IN_FULFILLMENT')).toEqual(['change_address', 'refund', 'refund_lines']);
    for (const returning of ['RETURN_REQUESTED', 'RETURNING']) {
      expect(deriveParentStatus(standard, [returning, 'IN_FULFILLMENT'])).toBe(returning);
      expect(offeredOnSplit(returning, 'IN_FULFILLMENT')).toContain('refund_lines');
      expect(offeredOnSplit(returning, 'IN_FULFILLMENT')).not.toContain('refund');
    }
    // an order not split takes none of them there: nothing of it is left in a warehouse
    for (const status of ['REFUNDING', 'RETURN_REQUESTED', 'RETURNING']) {
      for (const action of ['refund', 'refund_lines']) expect(standard.can(status, action, 'buyer', { split: false, child: false })).toBe(false);
    }
  });

  it('names the child refusing an action on the whole order', () => {
    expect(new IllegalTransition('SHIPPED', 'cancel', 'admin', 'child-2').message).toBe("Action 'cancel' by admin is not allowed while its child order child-2 is SHIPPED");
    expect(new IllegalTransition('SHIPPED', 'cancel', 'admin').message).toBe("Action 'cancel' by admin is not allowed while the order is SHIPPED");
  });

  it("offers a merchant, on a split order holding another merchant's lines too, what the routes carry out on its own children alone", () => {
    const own = children('IN_FULFILLMENT');
    expect(offeredOnOwnChildren(standard, own)).toEqual(['refund_lines', 'refund']);
    expect(offeredOnOwnChildren(standard, children('SHIPPED'))).toEqual([]);
    expect(offeredOnOwnChildren(standard, [])).toEqual([]);
    // another merchant's child under a return review (the whole order reads RETURN_REQUESTED) takes nothing from this merchant's, still in fulfilment
    expect(deriveParentStatus(standard, ['IN_FULFILLMENT', 'RETURN_REQUESTED'])).toBe('RETURN_REQUESTED');
    expect(offeredOnOwnChildren(standard, own)).toEqual(['refund_lines', 'refund']);
    // its own child's return is its to decide, from that child's status: the return's route takes the decision on that child
    expect(offeredOnOwnChildren(standard, children('RETURN_REQUESTED', 'DELIVERED'))).toEqual([]);
    const decisions = (...statuses: string[]) => returnDecisionsOnChildren(standard, 'merchant', children(...statuses)).map(({ orderId, action, to }) => `${orderId} ${action} -> ${to}`);
    expect(decisions('RETURN_REQUESTED', 'DELIVERED')).toEqual(['child-1 approve_return -> RETURNING', 'child-1 refuse_return -> DELIVERED']);
    // whatever child the whole order's status follows: one child's return approved, the other's to review
    expect(deriveParentStatus(standard, ['RETURNING', 'RETURN_REQUESTED'])).toBe('RETURNING');
    expect(decisions('RETURNING', 'RETURN_REQUESTED')).toEqual(['child-1 close_return -> DELIVERED', 'child-2 approve_return -> RETURNING', 'child-2 refuse_return -> DELIVERED']);
  });
});
