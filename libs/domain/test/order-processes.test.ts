import {
  ORDER_TYPES,
  IllegalTransition,
  allocateByLargestRemainder,
  checkProcess,
  deriveParentStatus,
  planSplit,
  presaleDepositCents,
  stateMachineFor,
  statusesWaitingFor,
  type Actor,
} from '@orders/domain';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const ACTORS: Actor[] = ['buyer', 'merchant', 'system', 'payment', 'warehouse', 'admin'];

describe('the order process tables', () => {
  it.each(ORDER_TYPES)('%s: every state is reachable, every non-final state has a way out, every state has both labels', (type) => {
    const machine = stateMachineFor(type);
    expect(checkProcess(machine.process)).toEqual([]);
    for (const state of machine.states()) {
      expect(machine.labels(state).buyerLabel).not.toBe('');
      expect(machine.labels(state).merchantLabel).not.toBe('');
    }
  });

  it.each(ORDER_TYPES)('%s: exactly the table’s (state, action, actor) triples are allowed; everything else is ILLEGAL_TRANSITION', (type) => {
    const machine = stateMachineFor(type);
    let legal = 0;
    for (const state of machine.states()) {
      for (const action of machine.actions()) {
        for (const actor of ACTORS) {
          const rule = machine.process.transitions.find((r) => r.from === state && r.action === action);
          if (rule && rule.actors.includes(actor) && !rule.guard) {
            expect(machine.fire(state, action, actor)).toMatchObject({ from: state, action, to: rule.to, actor });
            legal++;
          } else if (!rule || !rule.actors.includes(actor)) {
            expect(() => machine.fire(state, action, actor)).toThrow(IllegalTransition);
          }
        }
      }
    }
    expect(legal).toBeGreaterThan(5);
  });

  it('says where orders wait for their timers: shipped goods for the auto-confirm, delivered goods for the end of the after-sales window', () => {
    expect(statusesWaitingFor('scheduleAutoConfirm')).toEqual([{ status: 'SHIPPED', types: ['standard', 'flash_sale', 'presale'] }]);
    // an imported order is completed by its channel or merchant, never by a timer of ours
    expect(statusesWaitingFor('scheduleCompletion')).toEqual([{ status: 'DELIVERED', types: ['standard', 'flash_sale', 'presale'] }]);
    for (const { status, types } of statusesWaitingFor('scheduleAutoConfirm')) for (const type of types) expect(stateMachineFor(type).can(status, 'auto_confirm', 'system')).toBe(true);
    for (const { status, types } of statusesWaitingFor('scheduleCompletion')) for (const type of types) expect(stateMachineFor(type).can(status, 'complete', 'system')).toBe(true);
  });

  it('starts the after-sales window on delivery, and again only from a return under way: refused under review, or received in part on its way back', () => {
    const startingFrom = (type: 'standard' | 'presale', timer: 'scheduleAutoConfirm' | 'scheduleCompletion' | 'scheduleBalanceDeadline') =>
      stateMachineFor(type)
        .states()
        .filter((status) => stateMachineFor(type).startsTimerFrom(status, timer));
    // IN_FULFILLMENT: delivered with its SHIPPED event lost
    expect(startingFrom('standard', 'scheduleCompletion')).toEqual(['IN_FULFILLMENT', 'SHIPPED', 'RETURN_REQUESTED', 'RETURNING']);
    // an order ships once, and pays its deposit once: their timers are never started again
    expect(startingFrom('standard', 'scheduleAutoConfirm')).toEqual(['IN_FULFILLMENT']);
    expect(startingFrom('presale', 'scheduleBalanceDeadline')).toEqual(['PENDING_DEPOSIT']);
  });

  it('a split parent takes no fulfilment action itself: its status derives from its children', () => {
    const machine = stateMachineFor('standard');
    expect(machine.can('PAID', 'fulfil', 'system', { split: false, child: false })).toBe(true);
    expect(machine.can('PAID', 'fulfil', 'system', { split: true, child: false })).toBe(false);
    expect(() => machine.fire('PAID', 'split', 'system', { split: true, child: false })).toThrow(IllegalTransition);
    expect(deriveParentStatus(machine, ['SHIPPED', 'IN_FULFILLMENT', 'DELIVERED'])).toBe('IN_FULFILLMENT');
    expect(deriveParentStatus(machine, ['COMPLETED', 'COMPLETED', 'COMPLETED'])).toBe('COMPLETED');
    expect(deriveParentStatus(machine, ['REFUNDED', 'SHIPPED'])).toBe('SHIPPED');
    expect(deriveParentStatus(machine, ['REFUNDED', 'REFUNDED'])).toBe('REFUNDED');
  });

  it('keeps a split parent in after-sales until every child has closed: a cancelled order of two children is REFUNDED only when both refunds are', () => {
    const machine = stateMachineFor('standard');
    // cancelled after payment: both children refunding, then the first refund callback, then the second
    expect(deriveParentStatus(machine, ['REFUNDING', 'REFUNDING'])).toBe('REFUNDING');
    expect(deriveParentStatus(machine, ['REFUNDED', 'REFUNDING'])).toBe('REFUNDING');
    expect(deriveParentStatus(machine, ['REFUNDING', 'REFUNDED'])).toBe('REFUNDING');
    expect(deriveParentStatus(machine, ['REFUNDED', 'REFUNDED'])).toBe('REFUNDED');
    // a return under way on one child keeps the parent open, whatever the other child did
    expect(deriveParentStatus(machine, ['COMPLETED', 'RETURNING'])).toBe('RETURNING');
    expect(deriveParentStatus(machine, ['RETURNED', 'RETURN_REQUESTED'])).toBe('RETURN_REQUESTED');
    expect(deriveParentStatus(machine, ['DELIVERED', 'RETURN_REQUESTED'])).toBe('RETURN_REQUESTED');
    // after-sales shows before the forward life; of two in after-sales, the first child's
    expect(deriveParentStatus(machine, ['SHIPPED', 'REFUNDING'])).toBe('REFUNDING');
    expect(deriveParentStatus(machine, ['RETURNING', 'REFUNDING'])).toBe('RETURNING');
    // every child closed: completed if any part was kept, else the first child's closing
    expect(deriveParentStatus(machine, ['REFUNDED', 'COMPLETED'])).toBe('COMPLETED');
    expect(deriveParentStatus(machine, ['RETURNED', 'REFUNDED'])).toBe('RETURNED');
  });

  it('keeps a split parent REFUNDING while its buyer is still owed a refund, however its children closed', () => {
    const machine = stateMachineFor('standard');
    // the order's own refund from before the split declined, both children refunded since
    expect(deriveParentStatus(machine, ['REFUNDED', 'REFUNDED'], true)).toBe('REFUNDING');
    // a received return's money declined, the other child completed
    expect(deriveParentStatus(machine, ['RETURNED', 'COMPLETED'], true)).toBe('REFUNDING');
    // a child still open shows as before: the money owed holds only the close
    expect(deriveParentStatus(machine, ['REFUNDED', 'IN_FULFILLMENT'], true)).toBe('IN_FULFILLMENT');
    expect(deriveParentStatus(machine, ['COMPLETED', 'RETURNING'], true)).toBe('RETURNING');
  });

  it.each(ORDER_TYPES)('%s: a split parent takes one of its children’s statuses and is closed exactly when every child is', (type) => {
    const machine = stateMachineFor(type);
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...machine.states()), { minLength: 1, maxLength: 5 }), (children) => {
        const parent = deriveParentStatus(machine, children);
        expect(children).toContain(parent);
        expect(machine.isFinal(parent)).toBe(children.every((child) => machine.isFinal(child)));
        if (children.some((child) => !machine.isFinal(child) && machine.progress(child) < 0)) expect(machine.progress(parent)).toBe(-1);
      }),
    );
  });

  it('a presale pays a deposit, then its balance; an unpaid balance forfeits the deposit; a virtual order completes on payment', () => {
    const presale = stateMachineFor('presale');
    expect(presale.fire('ACCEPTED', 'persist', 'system').to).toBe('PENDING_DEPOSIT');
    expect(presale.paymentActionFor('PENDING_DEPOSIT')).toBe('pay_deposit');
    expect(presale.fire('PENDING_DEPOSIT', 'pay_deposit', 'payment')).toMatchObject({ to: 'DEPOSIT_PAID', effects: ['scheduleBalanceDeadline'] });
    expect(presale.paymentActionFor('DEPOSIT_PAID')).toBe('pay');
    expect(presale.fire('DEPOSIT_PAID', 'expire_balance', 'system').to).toBe('DEPOSIT_FORFEITED');
    expect(presale.labels('DEPOSIT_FORFEITED').buyerLabel).toBe('Closed');
    expect(presaleDepositCents(10_000, 20)).toBe(2_000);
    expect(presaleDepositCents(3, 20)).toBe(1);
    const virtual = stateMachineFor('virtual');
    expect(virtual.fire('PENDING_PAYMENT', 'pay', 'payment').effects).toContain('deliverDigital');
    expect(virtual.fire('PAID', 'deliver', 'system').to).toBe('COMPLETED');
    expect(virtual.can('PAID', 'fulfil', 'system')).toBe(false);
  });

  it('a presale whose deposit is paid: the buyer who cancels forfeits it, a merchant or an operator who calls it off refunds it, the units released either way', () => {
    const presale = stateMachineFor('presale');
    expect(presale.fire('DEPOSIT_PAID', 'cancel', 'buyer')).toMatchObject({ to: 'DEPOSIT_FORFEITED', effects: ['releaseStock'] });
    expect(presale.labels('DEPOSIT_FORFEITED')).toEqual({ buyerLabel: 'Closed', merchantLabel: 'Deposit kept (withdrawn or balance unpaid)', final: true });
    for (const actor of ['merchant', 'admin'] as const) {
      expect(presale.can('DEPOSIT_PAID', 'cancel', actor)).toBe(false);
      expect(presale.fire('DEPOSIT_PAID', 'refund', actor)).toMatchObject({ to: 'REFUNDING', effects: ['releaseStock', 'refundPayments'] });
    }
    expect(presale.can('DEPOSIT_PAID', 'refund', 'buyer')).toBe(false);
    expect(presale.fire('REFUNDING', 'refund_succeeded', 'payment').to).toBe('REFUNDED');
    // what the order's action lists offer each of them
    expect(presale.allowedActions('DEPOSIT_PAID', 'buyer')).toEqual(['change_address', 'cancel']);
    expect(presale.allowedActions('DEPOSIT_PAID', 'merchant')).toEqual(['refund']);
    expect(presale.allowedActions('DEPOSIT_PAID', 'admin')).toEqual(['change_address', 'refund']);
  });
});

describe('splitting a paid order', () => {
  it('allocates 100 cents over three equal lines as 34 + 33 + 33', () => {
    expect(allocateByLargestRemainder(100, [1, 1, 1])).toEqual([34, 33, 33]);
    expect(allocateByLargestRemainder(0, [5, 7])).toEqual([0, 0]);
    expect(allocateByLargestRemainder(7, [0, 0])).toEqual([4, 3]);
  });

  it('never loses or invents a cent, and no part is more than a cent from its exact share', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 20 }), (total, weights) => {
        const parts = allocateByLargestRemainder(total, weights);
        expect(parts.reduce((a, b) => a + b, 0)).toBe(total);
        const sum = weights.reduce((a, b) => a + b, 0);
        if (sum > 0) parts.forEach((part, i) => expect(Math.abs(part - (total * weights[i]!) / sum)).toBeLessThan(1));
      }),
    );
  });

  it('makes one child per (channel, merchant, warehouse) whose amounts add up to the parent to the cent', () => {
    const line = (lineNo: number, channel: string, merchantId: string, warehouseId: string, qty: number, unit: number) => ({
      lineNo,
      channel,
      merchantId,
      warehouseId,
      qty,
      unitPriceCents: unit,
      discountCents: 0,
      payableCents: qty * unit,
    });
    const lines = [line(1, 'self', 'shop', 'wh-east', 1, 3_999), line(2, 'self', 'shop', 'wh-west', 2, 1_250), line(3, 'third_party', 'potter', 'wh-west', 3, 899), line(4, 'self', 'shop', 'wh-east', 1, 1)];
    // 1,000 cents of order-level discount and 499 of shipping to spread over 11,196 cents of lines
    const children = planSplit({ subtotalCents: 9_197, discountCents: 1_000, shippingCents: 499, payableCents: 8_696 }, lines);
    expect(children.map((c) => c.key)).toEqual([
      { channel: 'self', merchantId: 'shop', warehouseId: 'wh-east' },
      { channel: 'self', merchantId: 'shop', warehouseId: 'wh-west' },
      { channel: 'third_party', merchantId: 'potter', warehouseId: 'wh-west' },
    ]);
    expect(children.map((c) => c.lines.map((l) => l.lineNo))).toEqual([[1, 4], [2], [3]]);
    const total = (key: 'subtotalCents' | 'discountCents' | 'shippingCents' | 'payableCents') => children.reduce((sum, c) => sum + c.amounts[key], 0);
    expect([total('subtotalCents'), total('discountCents'), total('shippingCents'), total('payableCents')]).toEqual([9_197, 1_000, 499, 8_696]);
    for (const child of children) expect(child.lines.reduce((s, l) => s + l.payableCents, 0)).toBe(child.amounts.payableCents);
  });
});
