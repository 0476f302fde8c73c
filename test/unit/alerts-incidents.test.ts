import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertManager, groupIncidents } from '../../src/alerts/index.js';
import type { Alert, AlertEvent } from '../../src/model/index.js';
import { MINUTE, POLICY, SECOND, T0, finding } from '../helpers/alerts.js';

const POLICY_INCIDENTS = { minDevices: 5, minShare: 0.5, windowMs: 2 * MINUTE, types: ['silence', 'outage'] };

/** Silence alerts, made by the real alert manager from silence findings. */
function silenceAlerts(devices: ReadonlyArray<{ key: string; site: string; at: number }>): Alert[] {
  const events: AlertEvent[] = [];
  const manager = createAlertManager({ policy: POLICY, emit: (e) => events.push(e) });
  for (const d of [...devices].sort((a, b) => a.at - b.at)) {
    manager.onFinding(finding(d.at, { key: d.key, site: d.site, type: 'silence', detector: 'silence', holds: true, severity: 'warning', explain: `no reading from ${d.key}` }));
  }
  return manager.openAlerts();
}

const meters = (site: string, count: number, from: number, spreadMs: number) =>
  Array.from({ length: count }, (_, i) => ({ key: `${site}-m${String(i).padStart(2, '0')}`, site, at: from + Math.round((i * spreadMs) / count) }));

void test('a site outage of 50 meters is one site incident linking the 50 device alerts; a lone silent meter is a device fault', () => {
  const alerts = silenceAlerts([...meters('s-3', 50, T0, 90 * SECOND), { key: 's-1-m07', site: 's-1', at: T0 + 30 * SECOND }]);
  assert.equal(alerts.length, 51);
  const siteSizes = new Map([['s-1', 40], ['s-2', 40], ['s-3', 50]]);
  const incidents = groupIncidents(alerts, { policy: POLICY_INCIDENTS, siteSizes });
  assert.deepEqual(incidents.map((i) => [i.hint, i.site, i.devices.length]), [
    ['site outage', 's-3', 50],
    ['device fault', 's-1', 1],
  ]);
  const outage = incidents[0]!;
  assert.equal(outage.alertIds.length, 50);
  assert.deepEqual(new Set(outage.alertIds), new Set(alerts.filter((a) => a.site === 's-3').map((a) => a.id)));
  assert.equal(outage.status, 'open');
  assert.equal(outage.siteDevices, 50);
  assert.match(outage.explain, /^50 of its 50 devices at site s-3 went silent/);
  assert.match(outage.id, /^in_[0-9a-f]{16}$/);
});

void test('every known site silent at once is one pipeline stall, not one incident per site', () => {
  const alerts = silenceAlerts([...meters('s-1', 10, T0, 20 * SECOND), ...meters('s-2', 12, T0 + 5 * SECOND, 20 * SECOND)]);
  const incidents = groupIncidents(alerts, { policy: POLICY_INCIDENTS, siteSizes: new Map([['s-1', 10], ['s-2', 12]]) });
  assert.deepEqual(incidents.map((i) => [i.hint, i.site, i.sites, i.devices.length]), [['pipeline stall', null, ['s-1', 's-2'], 22]]);
  // With a third site still reporting, the same alerts are two site outages.
  const partial = groupIncidents(alerts, { policy: POLICY_INCIDENTS, siteSizes: new Map([['s-1', 10], ['s-2', 12], ['s-3', 30]]) });
  assert.deepEqual(partial.map((i) => [i.hint, i.site]), [['site outage', 's-1'], ['site outage', 's-2']]);
});

void test('a small site counts by share: 3 of its 4 devices is an outage, 3 of 40 is three device faults', () => {
  const alerts = silenceAlerts(meters('s-9', 3, T0, 10 * SECOND));
  assert.deepEqual(groupIncidents(alerts, { policy: POLICY_INCIDENTS, siteSizes: new Map([['s-9', 4], ['s-1', 10]]) }).map((i) => i.hint), ['site outage']);
  assert.deepEqual(groupIncidents(alerts, { policy: POLICY_INCIDENTS, siteSizes: new Map([['s-9', 40], ['s-1', 10]]) }).map((i) => i.hint), ['device fault', 'device fault', 'device fault']);
});

void test('devices that go silent further apart than the window are not one incident; other alert types are left out', () => {
  const alerts = silenceAlerts(Array.from({ length: 6 }, (_, i) => ({ key: `m-${i}`, site: 's-1', at: T0 + i * 10 * MINUTE })));
  const spike: Alert = { ...alerts[0]!, id: 'al_spike', type: 'spike' };
  const incidents = groupIncidents([...alerts, spike], { policy: POLICY_INCIDENTS });
  assert.equal(incidents.length, 6);
  assert.ok(incidents.every((i) => i.hint === 'device fault'));
  assert.ok(!incidents.some((i) => i.alertIds.includes('al_spike')));
});

void test('incidents and their ids do not depend on the order alerts come in; resolved when all their alerts are', () => {
  const alerts = silenceAlerts(meters('s-3', 8, T0, 60 * SECOND));
  const a = groupIncidents(alerts, { policy: POLICY_INCIDENTS });
  const b = groupIncidents([...alerts].reverse(), { policy: POLICY_INCIDENTS });
  assert.deepEqual(b, a);
  const resolved = alerts.map((alert, i) => ({ ...alert, status: 'resolved' as const, resolvedAt: T0 + 10 * MINUTE + i }));
  const [done] = groupIncidents(resolved, { policy: POLICY_INCIDENTS });
  assert.equal(done?.id, a[0]?.id);
  assert.deepEqual([done?.status, done?.endedAt], ['resolved', T0 + 10 * MINUTE + 7]);
});
