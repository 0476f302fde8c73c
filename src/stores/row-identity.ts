import type { OpsKind } from '../model/index.js';
import type { ReadingRow } from './store.js';

/**
 * Deterministic id of a raw reading row: (stream, key, time, offset), the identity the Store
 * contract names for readings, so the same reading written twice is stored once.
 *
 * @example
 * readingRowId({ stream: 'power', key: 'm-1', site: 's-1', time: 1763900000000, values: {}, offset: 42 });
 * // 'power|m-1|1763900000000|42'
 */
export function readingRowId(row: Pick<ReadingRow, 'stream' | 'key' | 'time' | 'offset'>): string {
  return `${row.stream}|${row.key}|${row.time}|${row.offset}`;
}

/**
 * Every ops kind, in a fixed order, so that quality reports list each one (0 where absent).
 *
 * @example
 * const counts = Object.fromEntries(OPS_KINDS.map((kind) => [kind, 0]));
 */
export const OPS_KINDS = [
  'invalid',
  'duplicate',
  'out_of_order',
  'late',
  'too_late',
  'gap',
  'clock_skew',
  'evicted',
] as const satisfies readonly OpsKind[];

// Fails to compile when the model gains an ops kind that is missing above.
type MissingOpsKind = Exclude<OpsKind, (typeof OPS_KINDS)[number]>;
const everyOpsKindListed: [MissingOpsKind] extends [never] ? true : false = true;
void everyOpsKindListed;
