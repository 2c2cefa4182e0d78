import { OrderStateMachine, type OrderType } from '../order-process.js';
import { flashSaleProcess, standardProcess } from './retail.js';

export { standardProcess, flashSaleProcess } from './retail.js';
export type { RetailStatus, RetailAction } from './retail.js';

export const ORDER_TYPES: readonly OrderType[] = ['standard', 'flash_sale'];

const machines: Record<OrderType, OrderStateMachine> = {
  standard: new OrderStateMachine(standardProcess),
  flash_sale: new OrderStateMachine(flashSaleProcess),
};

export function stateMachineFor(type: OrderType): OrderStateMachine {
  return machines[type];
}
