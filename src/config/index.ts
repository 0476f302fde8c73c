// Public face of src/config: the config file's schema, its loader (YAML + environment) and the
// built-in defaults. This is the only module that reads process.env.
export { parseDuration, formatDuration } from './duration.js';
export { formatIssues, type ConfigIssue } from './issues.js';
export {
  ConfigInputSchema,
  StreamInputSchema,
  type ConfigInput,
  type StreamInput,
  type DetectorInput,
  type MetricOptions,
  type WindowInput,
} from './schema.js';
export { createStreamSchema, type DetectorValidator } from './stream-builder.js';
export {
  parseConfig,
  loadConfig,
  defaultConfig,
  type GridpulseConfig,
  type ParseConfigOptions,
  type ParseConfigResult,
  type LoadConfigOptions,
} from './config-file.js';
export {
  PLATFORM_DEFAULTS,
  type PlatformConfig,
  type ServerConfig,
  type MqttConfig,
  type LogConfig,
  type SimulatorConfig,
  type TokenConfig,
  type MaintenanceWindowConfig,
  type IncidentsConfig,
} from './platform-config.js';
export { parseEdgeConfig, loadEdgeConfig, parseSize, EdgeConfigSchema, EDGE_DEFAULTS, type EdgeConfig, type EdgeCollectorConfig, type EdgeFullPolicy } from './edge-config.js';
