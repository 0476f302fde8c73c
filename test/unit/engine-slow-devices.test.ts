// Devices that report far apart (half-hourly smart meters, the London data): the engine tells the
// alert manager each device's reporting interval on its findings, so an outage that lasts hours
// is one alert — not one alert per reading, each resolved by absence before the next reading.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertManager } from '../../src/alerts/index.js';
import { defaultConfig } from '../../src/config/index.js';
import { createDetectors } from '../../src/detectors/index.js';
import { StreamEngine, StreamRouter } from '../../src/engine/index.js';
import type { AlertEvent, Finding } from '../../src/model/index.js';

const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
const HALF_HOUR = 30 * 60_000;

test('a half-hourly meter whose readings drop to zero for 3 hours raises one outage alert, resolved when it recovers', () => {
  const schema = defaultConfig().streams.power!;
  const alerts: AlertEvent[] = [];
  const findings: Finding[] = [];
  const engine = new StreamEngine({
    schema,
    detectors: createDetectors(schema),
    partitions: 1,
    createFindingHandler: (emit) => createAlertManager({ policy: schema.alerts, emit }),
    outputs: { alert: (e) => alerts.push(e), finding: (f) => findings.push(f) },
  });
  const router = new StreamRouter([engine]);
  // Two days of a steady ~2 kW meter, then 3 hours (6 readings) of zeros, then 2 kW again for a day.
  const outageFrom = 96;
  const outageTo = outageFrom + 6;
  for (let i = 0; i < 150; i++) {
    const usageKw = i >= outageFrom && i < outageTo ? 0 : 2 + (i % 4) * 0.05;
    router.processText(JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: T0 + i * HALF_HOUR, usageKw }), i + 1);
  }
  router.finish();

  const outage = alerts.filter((e) => e.alert.type === 'outage');
  assert.deepEqual(
    outage.map((e) => [e.transition.kind, (e.transition.time - T0) / HALF_HOUR]),
    [
      ['open', outageFrom],
      ['resolve', outageTo],
    ],
    `one outage alert over the 6 zero readings (got ${outage.map((e) => `${e.transition.kind}@${(e.transition.time - T0) / HALF_HOUR}`).join(', ')})`,
  );
  assert.equal(outage[1]!.alert.findings, 6);
  const active = findings.filter((f) => f.type === 'outage' && f.active);
  assert.ok(active.length === 6 && active.every((f) => f.intervalMs === HALF_HOUR), 'each outage finding carries the learned interval');
});
