import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeJsonInSlices } from '../../src/cli/json-slices.js';

async function sliced(value: unknown, options: { sliceMs?: number; chunkChars?: number } = {}): Promise<{ text: string; writes: number }> {
  const pieces: string[] = [];
  await writeJsonInSlices({ write: (text) => Promise.resolve(pieces.push(text)) }, value, options);
  return { text: pieces.join(''), writes: pieces.length };
}

test('the text is exactly what JSON.stringify gives, for the shapes JSON has and the values it leaves out', async () => {
  const values: unknown[] = [
    { version: 1, createdAt: 1_700_000_000_000, offsets: [0, 12], state: { streams: [{ keys: [['m-1', null, 'AAAA', ['r1', null]], ['m-2', 's-1', 'BBBB']] }] } },
    [1, 'two', null, true, false, -0, 1e300, Number.NaN, Number.POSITIVE_INFINITY, undefined, () => 1, Symbol('s')],
    { a: undefined, b: () => 1, c: Symbol('c'), d: 'kept', 'quote"key': 'é\n\u2028', nested: { empty: {}, list: [] } },
    { date: new Date(0), typed: new Float64Array([1.5, 2]), map: new Map([[1, 2]]), viaToJson: { toJSON: () => undefined }, after: 1 },
    Object.assign(Object.create(null) as Record<string, unknown>, { noProto: [1, [2, [3]]] }),
    // eslint-disable-next-line no-sparse-arrays
    [, 1, , 2],
    'a string',
    42,
    null,
  ];
  for (const value of values) assert.equal((await sliced(value)).text, JSON.stringify(value));
});

test('a large value comes out whole and the same with tiny slices and chunks (the event loop ran between them)', async () => {
  const rows = Array.from({ length: 20_000 }, (_, i) => [`m-${i}`, i % 3 === 0 ? null : `s-${i % 50}`, 'x'.repeat(40), { 2: [i, i / 3] }]);
  const value = { version: 1, offsets: [123], state: { streams: [{ keys: rows }] } };
  let turns = 0;
  const ticker = setInterval(() => turns++, 0);
  try {
    const { text, writes } = await sliced(value, { sliceMs: 0, chunkChars: 10_000 });
    assert.equal(text, JSON.stringify(value));
    assert.ok(writes > 10, `written in pieces (${writes})`);
    assert.ok(turns > 0, 'timers ran while it was being written');
  } finally {
    clearInterval(ticker);
  }
});

test('a cycle is refused with an error, not an endless loop', async () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic['self'] = cyclic;
  await assert.rejects(sliced(cyclic), /nested deeper than/);
});

test('a value with no JSON text is refused', async () => {
  await assert.rejects(sliced(undefined), /no JSON text/);
});
