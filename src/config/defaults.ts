import type { DetectorInput, StreamInput } from './schema.js';

// Built-in defaults, written in the same shape as gridpulse.yaml so that they go through the same
// builder as user streams (and gridpulse.example.yaml can restate them word for word).

export const DEFAULT_PARTITIONS = 4;
export const DEFAULT_DATA_DIR = './data';
export const DEFAULT_WRITE_READINGS = true;
export const DEFAULT_RETENTION = { readings: '14d', aggregates: '90d', alerts: '90d', ops: '30d' } as const;

/** The DuckDB file inside the data directory, so that moving the data directory moves the store with it. */
export function defaultStoreUrl(dataDir: string): string {
  return `duckdb:${dataDir.replace(/\/+$/, '')}/gridpulse.duckdb`;
}

/** Defaults every stream starts from, built-in or not. */
export const STREAM_DEFAULTS = {
  time: { field: 'timestamp', format: 'auto' },
  expectedInterval: 'learn',
  gapGrace: 0.5,
  lateness: { outOfOrder: '120s', allowed: '10m', reportOutOfOrderOver: '0s', maxFuture: '1d', idleTimeout: '60s' },
  windows: ['1m', '5m', '15m', { size: '1m', slide: '15s' }],
  alerts: { resolveAfter: '5m', minDuration: '0s', cooldown: '10m' },
  state: { ttl: '7d', maxKeysPerPartition: 1_000_000 },
} as const satisfies StreamInput;

/** Per-metric detectors a stream gets when it lists none, run on its power metric or on every metric. */
export const DEFAULT_METRIC_DETECTOR_TYPES = ['spike', 'drop', 'outage', 'sustained_high', 'seasonal', 'zscore', 'iqr'] as const;
/**
 * Listed but off by default on a stream that has spike and drop: on the same metric they flag the
 * same events again (a second and third alert per spike), and they cost a sorted or rolling window
 * per device on every reading. `enabled: true` turns them on.
 */
export const DEFAULT_OFF_WITH_SPIKE_DROP: readonly string[] = ['zscore', 'iqr'];
/** Whole-stream detectors a stream gets when it lists none. */
export const DEFAULT_STREAM_DETECTOR_TYPES = ['out_of_range', 'silence'] as const;

/** The default detector list of a stream that lists none: `powerMetric` is the power metric's name, if any. */
export function defaultDetectors(powerMetric: string | undefined): DetectorInput[] {
  const metrics = powerMetric === undefined ? [] : [powerMetric];
  return [
    ...DEFAULT_METRIC_DETECTOR_TYPES.map((type) => ({ type, metrics: [...metrics], enabled: !DEFAULT_OFF_WITH_SPIKE_DROP.includes(type) })),
    ...DEFAULT_STREAM_DETECTOR_TYPES.map((type) => ({ type, metrics: [] })),
  ];
}

const POWER_STREAM: StreamInput = {
  key: 'meterId',
  site: 'siteId',
  time: { field: 'timestamp', format: 'auto' },
  metrics: {
    usageKw: { unit: 'kW', min: 0, power: true },
    voltage: { unit: 'V', min: 0, max: 1000 },
    current: { unit: 'A', min: 0 },
    pf: { min: 0, max: 1 },
  },
  detectors: [
    ...DEFAULT_METRIC_DETECTOR_TYPES.map((type) => ({ type, metrics: ['usageKw'], enabled: !DEFAULT_OFF_WITH_SPIKE_DROP.includes(type) })),
    { type: 'out_of_range', metrics: [] },
    { type: 'physics', metrics: [] },
    { type: 'silence', metrics: [] },
  ],
};

const MACHINES_STREAM: StreamInput = {
  key: 'machine_id',
  time: { field: 'timestamp', format: 'auto' },
  metrics: {
    air_temp_k: { unit: 'K', min: 250, max: 400 },
    process_temp_k: { unit: 'K', min: 250, max: 400 },
    rpm: { unit: 'rpm', min: 0, max: 10_000 },
    torque_nm: { unit: 'Nm', min: 0, max: 200 },
    tool_wear_min: { unit: 'min', min: 0 },
  },
  detectors: [
    // Not on tool_wear_min: it is a counter that drops to 0 at every tool change (a z-score alert each
    // time); its own rule below watches it.
    { type: 'zscore', metrics: ['air_temp_k', 'process_temp_k', 'rpm', 'torque_nm'] },
    { type: 'out_of_range', metrics: [] },
    { type: 'physics', metrics: [] },
    { type: 'silence', metrics: [] },
    // The AI4I 2020 failure modes (overstrain, heat dissipation, power failure, tool wear) as rules.
    { type: 'rule', name: 'overstrain', params: { when: 'avg(torque_nm, 1m) > 65' } },
    { type: 'rule', name: 'heat_dissipation', params: { when: 'process_temp_k - air_temp_k < 8.6 and rpm < 1380' } },
    {
      type: 'rule',
      name: 'power_failure',
      params: { when: 'torque_nm * rpm * 2 * pi / 60 < 3500 or torque_nm * rpm * 2 * pi / 60 > 9000' },
    },
    { type: 'rule', name: 'tool_wear', params: { when: 'tool_wear_min > 200' } },
  ],
};

/** The streams gridpulse knows without a config file. */
export const BUILT_IN_STREAMS: Readonly<Record<string, StreamInput>> = { power: POWER_STREAM, machines: MACHINES_STREAM };
