import { OrderStateMachine, type Effect, type OrderType } from '../order-process.js';
import { importedProcess } from './imported.js';
import { presaleProcess } from './presale.js';
import { flashSaleProcess, standardProcess } from './retail.js';
import { virtualProcess } from './virtual.js';

export { standardProcess, flashSaleProcess } from './retail.js';
export { presaleDepositCents, presaleProcess } from './presale.js';
export { virtualProcess } from './virtual.js';
export { importedProcess } from './imported.js';
export type { RetailStatus, RetailAction } from './retail.js';
export type { PresaleStatus, PresaleAction } from './presale.js';
export type { VirtualStatus, VirtualAction } from './virtual.js';
export type { ImportedStatus, ImportedAction } from './imported.js';

export const ORDER_TYPES: readonly OrderType[] = ['standard', 'flash_sale', 'presale', 'virtual', 'imported'];

/** Adding an order type is adding its table here; the engine and the adapters stay as they are. */
const machines: Record<OrderType, OrderStateMachine> = {
  standard: new OrderStateMachine(standardProcess),
  flash_sale: new OrderStateMachine(flashSaleProcess),
  presale: new OrderStateMachine(presaleProcess),
  virtual: new OrderStateMachine(virtualProcess),
  imported: new OrderStateMachine(importedProcess),
};

export function stateMachineFor(type: OrderType): OrderStateMachine {
  const machine = machines[type];
  if (!machine) throw new Error(`There is no order process for type '${String(type)}'`);
  return machine;
}

/**
 * Whether an order of `type` sends parcels (its table has a ship step). One that ships
 * nothing (a virtual order) pays no shipping and is bought without a delivery address.
 */
export function shipsParcels(type: OrderType): boolean {
  return stateMachineFor(type).actions().includes('ship');
}

/**
 * Where orders wait for the timer `effect` schedules (an auto-confirm in SHIPPED, a
 * completion in DELIVERED), by status with the order types that wait there: where an order
 * whose timer job was lost stays.
 */
export function statusesWaitingFor(effect: Effect): { status: string; types: OrderType[] }[] {
  const types = new Map<string, OrderType[]>();
  for (const type of ORDER_TYPES) for (const status of machines[type].statusesEnteredWith(effect)) types.set(status, [...(types.get(status) ?? []), type]);
  return [...types].map(([status, waiting]) => ({ status, types: waiting }));
}
