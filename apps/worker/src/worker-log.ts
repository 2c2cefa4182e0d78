import { serializedWithoutStatementValues } from '@orders/persistence';
import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';

/**
 * The worker's log: JSON lines at `level` (stdout unless given a destination). An error in it
 * leaves out what a MySQL error carries of its statement's values: buyers' addresses, phone
 * numbers and names (withoutStatementValues).
 */
export function workerLog(level: string, destination?: DestinationStream): Logger {
  return pino({ level, base: { app: 'worker', pid: process.pid }, serializers: { err: serializedWithoutStatementValues(stdSerializers.err) } }, destination);
}
