import { randomUUID } from 'node:crypto';
import type { Config } from '@orders/config';
import { createSimulator, type CommonFaults, type SimulatorOptions } from '@orders/simulation';
import type { FastifyInstance } from 'fastify';

/** The faults the simulator injects; changeable at run time through PUT /__admin/faults. */
export interface WarehouseFaults extends CommonFaults {
  /** delay between an order's PICKED, PACKED, SHIPPED and DELIVERED callbacks; 0: the warehouse never advances by itself */
  stepMs: number;
}

export interface WarehouseSimOptions extends WarehouseFaults, SimulatorOptions {}

/** The simulator's settings as configured (WAREHOUSE_SIM_*, the warehouse callback secret). */
export function warehouseSimOptions(config: Config): WarehouseSimOptions {
  return {
    latencyMs: config.WAREHOUSE_SIM_LATENCY_MS,
    failureRate: config.WAREHOUSE_SIM_FAILURE_RATE,
    timeoutRate: config.WAREHOUSE_SIM_TIMEOUT_RATE,
    outage: config.WAREHOUSE_SIM_OUTAGE,
    stepMs: config.WAREHOUSE_SIM_STEP_MS,
    callbackSecret: config.WAREHOUSE_CALLBACK_SECRET,
    callbackAttempts: config.SIM_CALLBACK_ATTEMPTS,
    callbackRetryMs: config.SIM_CALLBACK_RETRY_MS,
    logLevel: config.LOG_LEVEL,
  };
}

export const WAREHOUSE_EVENTS = ['PICKED', 'PACKED', 'SHIPPED', 'DELIVERED'] as const;
type WarehouseEvent = (typeof WAREHOUSE_EVENTS)[number] | 'RETURN_RECEIVED';
/** The units a returned parcel held, per SKU, as the warehouse counted them. */
type ReturnedUnits = Array<{ skuId: string; qty: number }>;

interface FulfilmentOrder {
  orderId: string;
  warehouseId: string;
  items: Array<{ skuId: string; qty: number }>;
  address: Record<string, string>;
  /** how many changes (address, units) the order system sent, and the order's version the last one applied was read at */
  changes: number;
  version: number;
  /** changes that changed nothing: at or below the version applied (sent again after a lost answer, or sent earlier and arrived late) */
  staleChanges: number;
  /** every unit was taken off the order: it is not shipped */
  cancelled: boolean;
  /** the parcel left (SHIPPED or DELIVERED was sent): a change comes too late and is refused */
  shipped: boolean;
  notifyUrl: string;
  trackingNo: string;
  /** events acknowledged by the order system, with its answer (a RETURN_RECEIVED with the return it named) */
  events: Array<{ event: WarehouseEvent; returnId?: string; items?: ReturnedUnits; status: number; at: string }>;
  requests: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A stand-in for the warehouse system: accepts an order to fulfil (idempotent by
 * orderId) and reports PICKED, PACKED, SHIPPED, DELIVERED by signed callbacks,
 * `stepMs` apart, each retried until acknowledged. With stepMs 0 an operator or a
 * test sends each event through POST /__admin/orders/:orderId/events, and a
 * RETURN_RECEIVED (never sent by itself) always: with the returnId of the parcel when given.
 */
export async function buildWarehouseSim(options: WarehouseSimOptions): Promise<FastifyInstance> {
  const { app, faults, injectFaults, sendCallback, track, isClosing } = createSimulator<WarehouseFaults>(
    { latencyMs: options.latencyMs, failureRate: options.failureRate, timeoutRate: options.timeoutRate, outage: options.outage, stepMs: options.stepMs },
    options,
    { stepMs: { type: 'integer', minimum: 0 } },
  );
  const orders = new Map<string, FulfilmentOrder>();

  /** A SHIPPED or DELIVERED means the parcel has left: later changes come too late. */
  function noteParcelLeft(order: FulfilmentOrder, event: WarehouseEvent): void {
    if (event === 'SHIPPED' || event === 'DELIVERED') order.shipped = true;
  }

  async function send(order: FulfilmentOrder, event: WarehouseEvent, returnId?: string, items?: ReturnedUnits): Promise<number> {
    const at = new Date().toISOString();
    const named = { ...(returnId === undefined ? {} : { returnId }), ...(items === undefined ? {} : { items }) };
    noteParcelLeft(order, event);
    const status = await sendCallback(order.notifyUrl, { orderId: order.orderId, event, ...named, ...(event === 'SHIPPED' ? { trackingNo: order.trackingNo } : {}), at });
    order.events.push({ event, ...named, status, at });
    return status;
  }

  async function advance(order: FulfilmentOrder): Promise<void> {
    for (const event of WAREHOUSE_EVENTS) {
      await sleep(faults.stepMs);
      if (isClosing() || order.cancelled) return;
      await send(order, event);
    }
  }

  app.post<{ Body: { orderId: string; warehouseId: string; items: Array<{ skuId: string; qty: number }>; address?: Record<string, string>; version?: number; notifyUrl: string } }>(
    '/v1/fulfilment-orders',
    {
      schema: {
        body: {
          type: 'object',
          required: ['orderId', 'warehouseId', 'items', 'notifyUrl'],
          properties: {
            orderId: { type: 'string', minLength: 1, maxLength: 64 },
            warehouseId: { type: 'string', minLength: 1 },
            items: { type: 'array', minItems: 1, items: { type: 'object', required: ['skuId', 'qty'], properties: { skuId: { type: 'string' }, qty: { type: 'integer', minimum: 1 } } } },
            address: { type: 'object' },
            version: { type: 'integer', minimum: 0 },
            notifyUrl: { type: 'string', format: 'uri' },
          },
        },
      },
    },
    async (request, reply) => {
      if (!(await injectFaults(reply))) return reply;
      const known = orders.get(request.body.orderId);
      if (known) {
        known.requests += 1;
        // the version of what it holds: an earlier hand-over of the order may have sent less than this one
        return reply.code(200).send({ orderId: known.orderId, status: 'ACCEPTED', version: known.version });
      }
      const order: FulfilmentOrder = {
        orderId: request.body.orderId,
        warehouseId: request.body.warehouseId,
        items: request.body.items,
        address: request.body.address ?? {},
        changes: 0,
        version: request.body.version ?? 0,
        staleChanges: 0,
        cancelled: false,
        shipped: false,
        notifyUrl: request.body.notifyUrl,
        trackingNo: `TRK-${randomUUID().slice(0, 8).toUpperCase()}`,
        events: [],
        requests: 1,
      };
      orders.set(order.orderId, order);
      if (faults.stepMs > 0) void track(advance(order));
      return reply.code(202).send({ orderId: order.orderId, status: 'ACCEPTED', version: order.version });
    },
  );

  app.post<{ Params: { orderId: string }; Body: { items: Array<{ skuId: string; qty: number }>; address: Record<string, string>; version?: number } }>(
    '/v1/fulfilment-orders/:orderId/changes',
    {
      schema: {
        body: {
          type: 'object',
          required: ['items', 'address'],
          properties: {
            items: { type: 'array', items: { type: 'object', required: ['skuId', 'qty'], properties: { skuId: { type: 'string' }, qty: { type: 'integer', minimum: 1 } } } },
            address: { type: 'object', additionalProperties: { type: 'string' } },
            version: { type: 'integer', minimum: 0, description: 'the order version the change was read at: one older than the last applied changes nothing' },
          },
        },
      },
    },
    async (request, reply) => {
      if (!(await injectFaults(reply))) return reply;
      const order = orders.get(request.params.orderId);
      if (!order) return reply.code(404).send({ error: 'unknown order' });
      const version = request.body.version ?? order.version;
      // a change at or below the version last applied was applied (this one sent again, its answer lost) or overtaken by a
      // later one: it changes nothing, and says so even once the parcel left, so the order system can tell that its units
      // were taken out before the parcel went, from a change that came too late (409)
      if (request.body.version !== undefined && version <= order.version) {
        order.staleChanges += 1;
        return { orderId: order.orderId, status: order.cancelled ? 'CANCELLED' : order.shipped ? 'SHIPPED' : 'ACCEPTED', version: order.version };
      }
      // as a real warehouse: the parcel is with the carrier, what it holds and where it goes are no longer the warehouse's
      if (order.shipped) return reply.code(409).send({ error: 'already shipped', status: 'SHIPPED', trackingNo: order.trackingNo });
      order.version = version;
      order.items = request.body.items;
      order.address = request.body.address;
      order.cancelled = request.body.items.length === 0;
      order.changes += 1;
      return { orderId: order.orderId, status: order.cancelled ? 'CANCELLED' : 'ACCEPTED' };
    },
  );

  // a returned parcel carries the return's id on its label (the buyer got it when asking for the return): the
  // operator or test reports it with the RETURN_RECEIVED, which the order system then applies to that return alone.
  // `notify: false`: the event happens in the warehouse and its callback is held up (the caller sends it later itself)
  app.post<{ Params: { orderId: string }; Body: { event: WarehouseEvent; returnId?: string; items?: ReturnedUnits; notify?: boolean } }>(
    '/__admin/orders/:orderId/events',
    {
      schema: {
        body: {
          type: 'object',
          required: ['event'],
          properties: {
            event: { type: 'string', enum: [...WAREHOUSE_EVENTS, 'RETURN_RECEIVED'] },
            returnId: { type: 'string', minLength: 1, maxLength: 64 },
            // the units a returned parcel held, when the warehouse counted fewer than its return named
            items: { type: 'array', items: { type: 'object', required: ['skuId', 'qty'], properties: { skuId: { type: 'string' }, qty: { type: 'integer' } } } },
            notify: { type: 'boolean', default: true },
          },
        },
      },
    },
    async (request, reply) => {
      const order = orders.get(request.params.orderId);
      if (!order) return reply.code(404).send({ error: 'unknown order' });
      const returnId = request.body.event === 'RETURN_RECEIVED' ? request.body.returnId : undefined;
      const items = request.body.event === 'RETURN_RECEIVED' ? request.body.items : undefined;
      const { event } = request.body;
      if (request.body.notify === false) {
        noteParcelLeft(order, event);
        return { orderId: order.orderId, event, ...(returnId === undefined ? {} : { returnId }), callbackStatus: null };
      }
      const status = await send(order, event, returnId, items);
      return { orderId: order.orderId, event, ...(returnId === undefined ? {} : { returnId }), callbackStatus: status };
    },
  );
  app.get('/__admin/orders', async () => ({ orders: [...orders.values()] }));
  return app;
}
