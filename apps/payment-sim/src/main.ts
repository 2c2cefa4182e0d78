import { runSimulator } from '@orders/simulation';
import { buildPaymentSim, paymentSimOptions } from './payment-sim.js';

runSimulator('payment simulator', (config) => buildPaymentSim(paymentSimOptions(config)), (config) => config.PAYMENT_SIM_PORT);
