import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { LiveEvent } from '../../src/api/index.js';
import { eventually, meterReading, startHarness, type Harness } from './api-harness.js';

/** The live feed of the platform itself (what /api/live subscribes to), with and without a type filter. */
describe('the platform live feed', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('a listener that asks for alerts gets alert events only; one that asks for nothing in particular gets every type', async () => {
    const alertsOnly: LiveEvent[] = [];
    const everything: LiveEvent[] = [];
    const stopAlerts = h.platform.live.subscribe((event) => alertsOnly.push(event), new Set(['alert']));
    const stopAll = h.platform.live.subscribe((event) => everything.push(event));
    try {
      const items = [];
      for (let minute = 0; minute < 4; minute++) items.push(meterReading('m-types', minute));
      items.push(meterReading('m-types', 4, { voltage: 5000 }));
      const response = await h.app.inject({ method: 'POST', url: '/v1/readings', payload: JSON.stringify(items), headers: { 'content-type': 'application/json' } });
      assert.equal(response.statusCode, 200, response.body);
      await eventually('the out_of_range alert for the alert listener', () =>
        alertsOnly.find((e) => e.type === 'alert' && e.data.alert.key === 'm-types' && e.data.alert.type === 'out_of_range'),
      );
      await eventually('an aggregate for the listener of every type', () => everything.find((e) => e.type === 'aggregate' && e.data.key === 'm-types'));
      await eventually('the alert for the listener of every type', () => everything.find((e) => e.type === 'alert' && e.data.alert.key === 'm-types'));
      assert.deepEqual([...new Set(alertsOnly.map((e) => e.type))], ['alert']);
    } finally {
      stopAlerts();
      stopAll();
    }
  });

  test('once the listener of every type is gone, a listener of alerts still gets its alerts', async () => {
    const stopAll = h.platform.live.subscribe(() => undefined);
    stopAll();
    const alerts: LiveEvent[] = [];
    const stop = h.platform.live.subscribe((event) => alerts.push(event), new Set(['alert']));
    try {
      const items = [meterReading('m-types-2', 10), meterReading('m-types-2', 11, { voltage: 5000 })];
      const response = await h.app.inject({ method: 'POST', url: '/v1/readings', payload: JSON.stringify(items), headers: { 'content-type': 'application/json' } });
      assert.equal(response.statusCode, 200, response.body);
      await eventually('the alert of m-types-2', () => alerts.find((e) => e.type === 'alert' && e.data.alert.key === 'm-types-2'));
      assert.ok(alerts.every((e) => e.type === 'alert'));
    } finally {
      stop();
    }
  });

  test('a reading refused at ingest reaches the live feed as an invalid ops event whose reason names the field, what was expected and what was got', async () => {
    const ops: LiveEvent[] = [];
    const stop = h.platform.live.subscribe((event) => ops.push(event), new Set(['ops']));
    try {
      const response = await h.app.inject({ method: 'POST', url: '/v1/readings', payload: JSON.stringify([meterReading('m-refused', 20, { usageKw: 'abc' })]), headers: { 'content-type': 'application/json' } });
      assert.equal(response.statusCode, 200, response.body);
      const event = await eventually('the invalid ops event', () => ops.find((e) => e.type === 'ops' && e.data.kind === 'invalid' && e.data.field === 'usageKw'));
      assert.ok(event.type === 'ops');
      assert.match(event.data.reason, /^rejected at ingest: .+: field usageKw expected .+, got "abc"$/);
    } finally {
      stop();
    }
  });
});
