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
