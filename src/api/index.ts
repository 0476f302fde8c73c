// Public face of src/api: the HTTP app factory (it never listens itself) and the Platform
// interface it is built on.
export { createApiApp, type ApiAppOptions } from './app.js';
export { ApiError, type ApiErrorBody, type ApiErrorCode } from './errors.js';
export { DEVICE_NOT_ALLOWED, OPEN_PRINCIPAL, hashToken } from './auth.js';
export type {
  Platform,
  ForwardedActionRequest,
  ForwardedAlertAction,
  IngestAuth,
  IngestRejection,
  IngestResult,
  DeviceLiveFeatures,
  RecentReading,
  PartitionStatus,
  PlatformStatus,
  LiveEvent,
  LiveFeed,
  SimulationRequest,
  SimulationStarted,
} from './platform.js';
