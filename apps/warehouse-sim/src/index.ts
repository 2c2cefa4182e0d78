export { buildWarehouseSim, warehouseSimOptions, WAREHOUSE_EVENTS } from './warehouse-sim.js';
export type { WarehouseFaults, WarehouseSimOptions } from './warehouse-sim.js';
