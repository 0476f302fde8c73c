/**
 * The out-of-the-box detectors of gridpulse and their registry. The engine gets a stream's
 * detectors from `createDetectors(schema)`; the config check uses `validateDetectorSpec`.
 *
 * Conventions shared by every detector: `onReading` returns 0 unless it reports an active
 * finding for that reading, and then that finding's score (0.5 at the threshold, 0.75 at twice
 * it, critical from 2.5 times it: `scoreForRatio`); a condition that was reported and has cleared
 * is reported once with `active: false`; the overall score of a reading is the maximum over its
 * detectors (`combineScores`). Nothing is allocated on a reading that reports nothing, and
 * states are plain numbers and arrays (iqr: Float64Arrays) — checkpoint them with
 * `detectorStateToJson` / `detectorStateFromJson`.
 */
export {
  createDetectors,
  detectorTypes,
  detectorDefinition,
  validateDetectorSpec,
  resolveDetectorParams,
  registerDetector,
  combineScores,
  type DetectorDefinition,
} from './registry.js';
export { parseDuration, validateParams, resolveParams, DurationParam, type SpecIssue } from './params.js';
export { scoreForRatio, selectMetrics, ewmaWeight, formatNumber, formatPercent, formatDuration, type SelectedMetric } from './common.js';
export { spikeParams, createSpikeDetectors, type SpikeParams } from './spike.js';
export { dropParams, createDropDetectors, type DropParams } from './drop.js';
export { BaselineShiftDetector, type BaselineShiftState, type BaselineShiftConfig } from './baseline-shift.js';
export { outageParams, createOutageDetectors, OutageDetector, type OutageParams, type OutageState } from './outage.js';
export { sustainedHighParams, createSustainedHighDetectors, SustainedHighDetector, type SustainedHighParams, type SustainedHighState } from './sustained-high.js';
export { silenceParams, createSilenceDetectors, SilenceDetector, type SilenceParams, type SilenceState } from './silence.js';
export { zscoreParams, createZscoreDetectors, ZscoreDetector, type ZscoreParams, type ZscoreState } from './zscore.js';
export { iqrParams, createIqrDetectors, IqrDetector, type IqrParams, type IqrState } from './iqr.js';
export { seasonalParams, createSeasonalDetectors, SeasonalDetector, type SeasonalParams, type SeasonalState } from './seasonal.js';
export { outOfRangeParams, createOutOfRangeDetectors, OutOfRangeDetector, type OutOfRangeParams, type OutOfRangeState } from './out-of-range.js';
export { physicsParams, createPhysicsDetectors, PhysicsDetector, type PhysicsParams, type PhysicsState } from './physics.js';
export { ruleParams, createRuleDetectors, RuleDetector, type RuleParams, type RuleState } from './rule.js';
export { compileRule, RuleSyntaxError, type CompiledRule, type WindowTerm, type RuleStep } from './rule-parser.js';
export { detectorStateToJson, detectorStateFromJson } from './state-json.js';
export { modelParams, createModelDetectors, ModelDetector, type ModelParams, type ModelState } from './model.js';
export {
  MODEL_FILE_FORMAT,
  MODEL_FILE_FORMAT_VERSION,
  MODEL_KINDS,
  ROLLING_STATISTICS,
  ROLLING_CAPACITY,
  FeatureComputer,
  parseModelFile,
  readModelFile,
  machineRoleOf,
  mapInputs,
  scoreTrees,
  contributions,
  topFeatures,
  averagePathLength,
  type ModelFile,
  type ModelKind,
  type ModelInput,
  type ModelMetrics,
  type ModelTraining,
  type FeatureSpec,
  type RollingStatistic,
  type RollingState,
  type TreeArrays,
  type OnnxSpec,
  type MachineRole,
} from './model-scoring.js';
