// The queue of operator actions that `gridpulse up` hands to `gridpulse process` members
// (src/cli/alert-actions.ts), on the real PostgreSQL: claims are exclusive leases, a claimed action
// cannot be withdrawn, an unclaimed one can, and only the claimer records the outcome.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertActionQueue, forwardAlertAction } from '../../src/cli/alert-actions.js';
import { TestDatabases, query } from '../helpers/kafka-processes.js';

const databases = new TestDatabases(`gp_actions_${process.pid}_${Date.now()}`);
after(() => databases.dropAll());

test('a claimed action belongs to its claimer until its lease runs out; only the claimer records the outcome; a claimed action cannot be withdrawn', async () => {
  const url = await databases.create('lease');
  const a = createAlertActionQueue(url, { member: 'a:1', leaseMs: 400 });
  const b = createAlertActionQueue(url, { member: 'b:2', leaseMs: 400 });
  await Promise.all([a.ready(), b.ready()]);
  try {
    const id = await a.enqueue({ alertId: 'power:m-1:outage:1', action: 'acknowledge', by: 'ana', note: 'on it' });
    assert.deepEqual((await b.claimable(10)).map((row) => [row.id, row.alertId, row.action, row.by, row.note]), [[id, 'power:m-1:outage:1', 'acknowledge', 'ana', 'on it']]);
    assert.equal(await a.claim(id), true);
    assert.equal(await b.claim(id), false, 'claimed by a: b cannot take it');
    assert.deepEqual(await b.claimable(10), [], 'a live claim is not claimable');
    assert.equal(await b.cancel(id), false, 'a claimed action cannot be withdrawn');
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal((await b.claimable(10)).length, 1, 'the lease ran out: claimable again');
    assert.equal(await b.claim(id), true);
    assert.equal(await a.complete(id, 'applied', 'acknowledged'), false, 'a lost its claim: its outcome is not recorded');
    assert.equal(await b.complete(id, 'applied', 'acknowledged', { message: 'done' }), true);
    const row = await a.get(id);
    assert.equal(row?.outcome, 'applied');
    assert.equal(row?.claimedBy, 'b:2');
    assert.equal(row?.statusAfter, 'acknowledged');
    assert.equal(await b.complete(id, 'refused', 'open'), false, 'an outcome is recorded once');
    assert.equal(await a.cancel(id), false);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('forwarding waits for the outcome: applied with the alert, refused with the status, withdrawn when nobody claims it in time', async () => {
  const url = await databases.create('forward');
  const api = createAlertActionQueue(url, { member: 'api:1' });
  const member = createAlertActionQueue(url, { member: 'member:1' });
  await member.ready();
  const alert = { id: 'power:m-2:outage:5', stream: 'power', key: 'm-2', site: 's-1', type: 'outage', metric: 'usageKw', severity: 'critical', status: 'acknowledged', openedAt: 5, updatedAt: 9, resolvedAt: undefined, score: 1, peakScore: 1, value: 0, findings: 3, explain: 'x' } as const;
  // A member that applies the first action and refuses the second.
  let served = 0;
  const serving = (async () => {
    while (served < 2) {
      for (const action of await member.claimable(10)) {
        if (!(await member.claim(action.id))) continue;
        if (served === 0) await member.complete(action.id, 'applied', 'acknowledged', { alert: { ...alert, resolvedAt: undefined } });
        else await member.complete(action.id, 'refused', 'resolved', { message: 'alert is resolved' });
        served++;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  try {
    const waits = { claimWaitMs: 1500, totalWaitMs: 5000, pollMs: 50 };
    const applied = await forwardAlertAction(api, { action: 'acknowledge', id: alert.id, by: 'ana', note: undefined }, waits);
    assert.equal(applied.outcome, 'applied');
    assert.equal(applied.outcome === 'applied' ? applied.alert.status : '', 'acknowledged');
    assert.deepEqual(await forwardAlertAction(api, { action: 'resolve', id: alert.id, by: 'ana', note: undefined }, waits), { outcome: 'refused', status: 'resolved', message: 'alert is resolved' });
    await serving;
    const started = Date.now();
    const unclaimed = await forwardAlertAction(api, { action: 'assign', id: alert.id, by: 'ana', note: undefined, assignee: 'bo' }, waits);
    assert.equal(unclaimed.outcome, 'unclaimed');
    assert.ok(Date.now() - started >= 1500, 'it waited for a claim');
    const rows = await query<{ action: string; outcome: string }>(url, 'SELECT action, outcome FROM alert_actions ORDER BY id');
    assert.deepEqual(rows, [
      { action: 'acknowledge', outcome: 'applied' },
      { action: 'resolve', outcome: 'refused' },
      { action: 'assign', outcome: 'cancelled' },
    ]);
    assert.deepEqual(await member.claimable(10), [], 'a withdrawn action is never applied');
  } finally {
    await Promise.all([api.close(), member.close()]);
  }
});
