export { buildPaymentSim, paymentSimOptions } from './payment-sim.js';
export type { PaymentFaults, PaymentSimOptions } from './payment-sim.js';
