import { StockKeys, StockScriptCall } from '@orders/stock';
import type { Command, Redis } from 'ioredis';

/**
 * The connection `redis` as an Inventory uses it, except that the call of `script` on one
 * bucket of a SKU (its hash the script's first key) goes to `intercept`, which sends it on
 * with `send`, later, or fails it: what another process does in that instant, or an answer
 * that never came.
 */
export function interceptingScript(
  redis: Redis,
  prefix: string,
  call: { script: StockScriptCall['scriptName']; skuId: string; bucket: number },
  intercept: (command: StockScriptCall, send: () => void) => void,
): Redis {
  const key = new StockKeys(prefix).sku(`{g${call.bucket}}`, call.skuId);
  return new Proxy(redis, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (property !== 'sendCommand') return typeof value === 'function' ? value.bind(target) : value;
      return (command: Command) => {
        if (!(command instanceof StockScriptCall && command.scriptName === call.script && command.args[2] === key)) return target.sendCommand(command);
        intercept(command, () => void target.sendCommand(command));
      };
    },
  });
}
