// The dead-letter stores: one behaviour in memory and in a JSON-lines file, and the file survives a restart.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileDeadLetterStore, createMemoryDeadLetterStore, deadLetterId, type DeadLetter, type DeadLetterStore } from '../../src/alerts/index.js';
import { GpError } from '../../src/model/index.js';
import { alertEvents } from './alerts-delivery-harness.js';

const root = mkdtempSync(join(tmpdir(), 'gp-dead-letters-'));
after(() => rmSync(root, { recursive: true, force: true }));
let folders = 0;
const newPath = () => join(root, `run-${folders++}`, 'alerts', 'dead-letters.jsonl');

function entries(channel = 'hook'): DeadLetter[] {
  return alertEvents(2).map((event, index) => ({
    id: deadLetterId(channel, event.transition.id),
    channel,
    transitionId: event.transition.id,
    alertId: event.alert.id,
    template: 'generic',
    event,
    reason: `HTTP 500 (${index})`,
    status: 500,
    attempts: 8,
    firstAttemptAt: 1000 + index,
    deadLetteredAt: 2000 + index,
  }));
}

const kinds: Array<[string, () => DeadLetterStore]> = [
  ['in memory', () => createMemoryDeadLetterStore()],
  ['in a JSON-lines file', () => createFileDeadLetterStore({ path: newPath() })],
];

for (const [kind, make] of kinds) {
  test(`dead letters ${kind}: add, list oldest first, filter, replace by id, remove`, async () => {
    const store = make();
    await store.ready();
    const [a, b, c, d] = entries();
    const [other] = entries('mqtt');
    assert.ok(a && b && c && d && other);
    for (const entry of [a, b, c, other]) await store.add(entry);
    assert.deepEqual((await store.list()).map((entry) => entry.id), [a.id, b.id, c.id, other.id]);
    assert.deepEqual((await store.list({ channel: 'mqtt' })).map((entry) => entry.id), [other.id]);
    assert.deepEqual((await store.list({ limit: 2 })).map((entry) => entry.id), [a.id, b.id]);
    await store.add({ ...a, attempts: 9, reason: 'redelivery failed: HTTP 503' });
    assert.deepEqual((await store.list()).map((entry) => entry.id), [b.id, c.id, other.id, a.id], 'a replaced entry moves to the end');
    assert.equal((await store.get(a.id))?.attempts, 9);
    assert.equal(await store.remove(b.id), true);
    assert.equal(await store.remove(b.id), false);
    assert.equal(await store.get(b.id), undefined);
    assert.equal(await store.size(), 3);
    assert.deepEqual((await store.get(c.id))?.event, c.event, 'the whole event is kept');
    await store.close();
    await store.close();
  });
}

test('the file store keeps its entries across a restart and ignores a line torn by a crash', async () => {
  const path = newPath();
  const first = createFileDeadLetterStore({ path });
  const [a, b, c] = entries();
  assert.ok(a && b && c);
  await first.add(a);
  await first.add(b);
  await first.add(c);
  await first.remove(b.id);
  await first.close();
  // A crash in the middle of writing the next line.
  appendFileSync(path, '{"op":"add","entry":{"id":"hook:al_');

  const second = createFileDeadLetterStore({ path });
  assert.deepEqual((await second.list()).map((entry) => entry.id), [a.id, c.id]);
  assert.deepEqual(await second.get(a.id), a);
  await second.add(b);
  await second.close();
  const third = createFileDeadLetterStore({ path });
  assert.deepEqual((await third.list()).map((entry) => entry.id), [a.id, c.id, b.id], 'a record written after a torn line is read back');
  await third.close();
  // A whole last record whose newline was lost: kept, and the next record starts on a line of its own.
  writeFileSync(path, readFileSync(path, 'utf8').replace(/\n$/, ''));
  const fourth = createFileDeadLetterStore({ path });
  await fourth.remove(a.id);
  await fourth.close();
  const fifth = createFileDeadLetterStore({ path });
  assert.deepEqual((await fifth.list()).map((entry) => entry.id), [c.id, b.id]);
  await fifth.close();
});

test('the file store rewrites itself when most lines are stale, keeping the live entries', async () => {
  const path = newPath();
  const store = createFileDeadLetterStore({ path, compactAfter: 4 });
  const [a, b, c, d] = entries();
  assert.ok(a && b && c && d);
  for (const entry of [a, b, c, d]) await store.add(entry);
  for (const entry of [a, b, c]) await store.remove(entry.id);
  await store.add({ ...d, attempts: 10 });
  const lines = readFileSync(path, 'utf8').trim().split('\n');
  assert.ok(lines.length < 8, `stale lines were dropped (${lines.length} left)`);
  await store.close();
  const reopened = createFileDeadLetterStore({ path });
  assert.deepEqual((await reopened.list()).map((entry) => [entry.id, entry.attempts]), [[d.id, 10]]);
  await reopened.close();
});

test('a damaged line in the middle of the file is an error naming the file and line, not a silent loss', async () => {
  const path = newPath();
  const store = createFileDeadLetterStore({ path });
  const [a, b] = entries();
  assert.ok(a && b);
  await store.add(a);
  await store.close();
  writeFileSync(path, `${readFileSync(path, 'utf8')}not json\n${JSON.stringify({ op: 'add', entry: b })}\n`);
  const broken = createFileDeadLetterStore({ path });
  await assert.rejects(broken.ready(), (error: unknown) => error instanceof GpError && error.code === 'GP_STORE_FAILED' && error.message.includes(`${path} line 2`));
});
