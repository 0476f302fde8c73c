// Public face of src/edge: the edge agent (collectors → capped durable spool → forwarder to the platform).
export { createEdgeAgent, UNDELIVERABLE_FILE, type EdgeAgent, type EdgeAgentOptions, type EdgeStatus } from './agent.js';
export { createSpool, type Spool, type SpoolOptions, type SpoolStats, type SpoolRecovery, type SpoolFullPolicy } from './spool.js';
export { Forwarder, createHttpSender, retryAfterOf, type ForwarderOptions, type ForwarderStats, type ForwardSender, type HttpSenderOptions } from './forwarder.js';
export { createKafkaSender, markBackfill, type KafkaSenderOptions } from './kafka-sender.js';
export { Intake, parseReadings, type IntakeResult, type IntakeRejection, type TakeOptions } from './intake.js';
export { createCollector, decodeRegister, type Collector, type CollectorStats, type CollectorContext } from './collectors.js';
export { LocalDetection, type LocalDetectionStats, type LocalAlertEvent } from './detect.js';
