// Public face of src/ingest: file sources (CSV/NDJSON/gzip, column auto-detection) and the simulator.
export {
  readLines,
  readLineBatches,
  flattenBatches,
  DEFAULT_MAX_LINE_BYTES,
  type LineItem,
  type LineText,
  type LineOversize,
  type LineSource,
  type ReadLinesOptions,
} from './line-reader.js';
export {
  sniffFile,
  readRecords,
  readRecordBatches,
  formatBytes,
  DEFAULT_SAMPLE_SIZE,
  type SniffResult,
  type SniffOptions,
  type SourceRecord,
  type SourceError,
  type ReadRecordsOptions,
} from './file-source.js';
export {
  detectColumns,
  normalizeName,
  metricName,
  deviceNameOf,
  ROW_TIME_FIELD,
  FILE_KEY_FIELD,
  DEFAULT_ROW_INTERVAL_MS,
  DEFAULT_ROW_START_MS,
  type DetectedLayout,
  type DetectedMetric,
  type LayoutHints,
} from './detect-columns.js';
export { SimulationRandom } from './simulator-random.js';
export {
  simulate,
  simulateLines,
  formatLabels,
  type SimulationSummary,
  type SimulationStream,
  type SimulateToFilesOptions,
} from './simulator.js';
export {
  ANOMALY_TYPES,
  METER_ANOMALY_TYPES,
  MACHINE_ANOMALY_TYPES,
  describeAnomalyModel,
  type AnomalyType,
  type AnomalyLabel,
  type SimulationLabels,
} from './simulator-anomalies.js';
export { DEFAULT_SIMULATION_OPTIONS, resolveSimulationOptions, type SimulationOptions, type SimulationOptionsInput } from './simulator-options.js';
export {
  createLiveSimulator,
  MACHINE_SESSION_PROFILES,
  type LiveSimulator,
  type LiveSimulatorOptions,
  type LiveSimulatorStats,
  type MachineSession,
  type MachineSessionProfile,
} from './live-simulator.js';
export { createMqttSource, parsePayload as parseMqttPayload, topicMatches as mqttTopicMatches, MQTT_DEFAULTS, type MqttSource, type MqttSourceOptions, type MqttSourceStats, type MqttBatch, type MqttRejection, type MqttTopicRoute } from './mqtt-source.js';
