import type { DetectorSpec, MetricSpec, StreamSchema, WindowSpec } from '../../src/model/index.js';

/** A hand-built stream schema for engine tests (the config module builds the real ones). */
export function testSchema(overrides: Partial<StreamSchema> & { metricNames?: string[] } = {}): StreamSchema {
  const names = overrides.metricNames ?? ['usageKw'];
  const metrics: MetricSpec[] = names.map((name) => ({ name, field: name, kind: 'gauge', min: undefined, max: undefined, unit: undefined }));
  const windows: WindowSpec[] = [
    { name: '1m', sizeMs: 60_000, slideMs: 60_000 },
    { name: '5m', sizeMs: 300_000, slideMs: 300_000 },
  ];
  const detectors: DetectorSpec[] = [];
  const { metricNames: _unused, ...rest } = overrides;
  return {
    name: 'power',
    keyField: 'meterId',
    siteField: 'siteId',
    timeField: 'timestamp',
    timeFormat: 'auto',
    idField: undefined,
    metrics,
    metricIndex: Object.fromEntries(names.map((n, i) => [n, i])),
    powerMetricIndex: 0,
    energyMetricIndex: -1,
    lateness: { outOfOrderMs: 120_000, allowedLatenessMs: 600_000, reportOutOfOrderOverMs: 0, maxFutureMs: 86_400_000, idleTimeoutMs: 60_000 },
    expectedIntervalMs: undefined,
    gapGrace: 0.5,
    windows,
    detectors,
    alerts: { resolveAfterMs: 300_000, minDurationMs: 0, cooldownMs: 600_000 },
    state: { ttlMs: 7 * 86_400_000, maxKeysPerPartition: 1_000_000 },
    ...rest,
  };
}
