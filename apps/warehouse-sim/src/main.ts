import { runSimulator } from '@orders/simulation';
import { buildWarehouseSim, warehouseSimOptions } from './warehouse-sim.js';

runSimulator('warehouse simulator', (config) => buildWarehouseSim(warehouseSimOptions(config)), (config) => config.WAREHOUSE_SIM_PORT);
