// The outbox crash harness (scripts/outbox-crash.ts) at a small size: alert transitions written
// through the PostgreSQL store while a relay child on a logical replication slot delivers them, the
// relay SIGKILLed 5 times and PostgreSQL stopped in immediate mode once. The full size (100 000
// transitions, 20 kills, 3 restarts) is run by hand: see the harness's header.
//
// It runs on a private cluster the harness creates with the PostgreSQL 15 binaries (wal_level=logical,
// a free loopback port; removed afterwards), not on the shared 127.0.0.1:5433 of
// `scripts/servers.sh start postgres-logical`: an immediate restart there would cut the connections of
// the other outbox tests, which the runner runs at the same time. Needs root (initdb and pg_ctl run as
// the postgres user, as servers.sh does); without the binaries it fails saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { runNode } from '../helpers/run-node.js';

const HARNESS = fileURLToPath(new URL('../../scripts/outbox-crash.ts', import.meta.url));
const runHarness = (args: readonly string[]): ReturnType<typeof runNode> => runNode([HARNESS, ...args]);

function figure(stdout: string, name: string): number {
  const match = new RegExp(`^${name}: (\\d+)`, 'm').exec(stdout);
  assert.ok(match !== null, `the harness printed no "${name}" line:\n${stdout}`);
  return Number(match[1]);
}

// Idle for 8 s: the slot's restart point moves only once the relay has confirmed past a checkpoint's
// running-transactions record; with 4 s a relay still catching up on a loaded machine had not done
// so for the first checkpoint by the time the samples began (CI, 2026-12-03: 21 MB retained, the
// run's 16 MB and the idle writes, while everything was confirmed).
test('5 000 transitions, relay SIGKILLed 5 times, PostgreSQL restarted in immediate mode once: all published, in order per alert, slot bounded when idle', { timeout: 180_000 }, async () => {
  const { code, stdout, stderr } = await runHarness(['--transitions', '5000', '--alerts', '100', '--kills', '5', '--restarts', '1', '--idle-ms', '8000', '--private-cluster']);
  const context = `\n--- stdout\n${stdout}\n--- stderr (last 2000 characters)\n${stderr.slice(-2000)}`;
  assert.equal(code, 0, `the harness exits 0 on success${context}`);
  assert.match(stdout, /^result: PASS$/m, context);
  assert.equal(figure(stdout, 'transitions'), 5000, `every planned transition committed${context}`);
  assert.equal(figure(stdout, 'transition rows'), 5000, context);
  assert.equal(figure(stdout, 'kills'), 5, context);
  assert.equal(figure(stdout, 'restarts'), 1, context);
  assert.equal(figure(stdout, 'missing'), 0, `every committed transition was published${context}`);
  assert.equal(figure(stdout, 'unexpected'), 0, context);
  assert.equal(figure(stdout, 'published after dedup'), 5000, context);
  assert.equal(figure(stdout, 'order violations'), 0, context);
  const published = figure(stdout, 'published');
  const duplicates = figure(stdout, 'duplicates');
  assert.equal(published - duplicates, 5000, `duplicates are repeats of ids already published${context}`);
  // At least once, not at least twice: a kill repeats at most the row in flight; the restart may
  // lose marks not yet flushed (synchronous_commit off), which are a handful, not a batch.
  assert.ok(duplicates <= 200, `${duplicates} duplicates${context}`);
  // The run wrote megabytes of WAL; idle, the slot holds almost none of it.
  assert.ok(figure(stdout, 'WAL written during run') > 4_000_000, context);
  assert.ok(figure(stdout, 'max retained WAL idle') < 1_048_576, `the idle slot's retained WAL${context}`);
});
