/** Training, model files, scoring and evaluation of detectors. */
export {
  ALERT_TYPE_TO_LABEL,
  DEFAULT_EVAL_LEAD_MS,
  DEFAULT_EVAL_TOLERANCE_MS,
  LABEL_TYPES,
  OPS_KIND_TO_LABEL,
  evaluateDetections,
  formatEvalReport,
  parseDetectionRecord,
  parseLabelSet,
} from './detection-eval.js';
export type {
  DetectionRecord,
  EvalLabel,
  EvalLabelSet,
  EvalOptions,
  EvalReport,
  EvalTypeResult,
  LabelType,
  OtherDetectorResult,
} from './detection-eval.js';
export { parseCsv, readCsvFile, buildDataset, datasetForModel, computeFeatures, engineeredFeatures, sha256, type Table, type Dataset, type DatasetOptions } from './dataset.js';
export { binFeatures, growTree, Random, MISSING_BIN, DEFAULT_MAX_BINS, type BinnedFeatures, type TreeOptions } from './tree-builder.js';
export {
  trainGbdt,
  trainForest,
  trainIsolationForest,
  DEFAULT_GBDT,
  DEFAULT_FOREST,
  DEFAULT_ISOLATION,
  type GbdtOptions,
  type ForestOptions,
  type IsolationOptions,
  type TrainedTrees,
  type TreeProgress,
} from './learners.js';
export {
  classificationMetrics,
  confusionAt,
  rocAuc,
  prCurve,
  averagePrecision,
  stratifiedFolds,
  formatMetric,
  formatConfusion,
  prCurveSvg,
  type ClassificationMetrics,
  type Confusion,
  type PrPoint,
} from './metrics.js';
export { trainModel, TRAINABLE_KINDS, DEFAULT_THRESHOLD, type TrainableKind, type TrainOptions, type TrainResult } from './train.js';
export { writeModelFile, listModels, readModelDir, loadModel, type ModelSummary, type LoadedModel } from './model-files.js';
export { logisticRegressionOnnx, onnxModelFile, openOnnxModel, type OnnxScorer } from './onnx.js';
export { datasetFromStore, DEFAULT_LABEL_TYPES, type StoreDatasetOptions } from './store-training.js';
export { tableFromLabelledReadings, type FailureEpisode, type LabelledReadingsOptions } from './labelled-readings.js';
