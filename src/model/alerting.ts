import type { AlertEvent, Finding } from './records.js';

/**
 * Receives the findings of one partition, in event-time order, and turns them into alert
 * events (open → update → resolve). Implemented by `src/alerts`; the engine calls it on the
 * partition's thread, so an implementation needs no locking. One instance per partition.
 *
 * Deliberately left out: delivery (webhooks, topics) and storage — the handler only decides
 * what happened and passes `AlertEvent`s to the `emit` callback it was created with.
 */
export interface FindingHandler {
  onFinding(finding: Finding): void;
  /** Called whenever the partition's watermark advances; resolves alerts whose condition has been absent long enough. */
  onWatermark(watermark: number): void;
  /** Number of alerts currently open (for metrics). */
  openCount(): number;
  /** Optional: the handler's whole state as plain JSON, for the engine's checkpoint (`StreamEngine.snapshot`). */
  snapshot?(): unknown;
  /** Optional: replace the state with one taken by `snapshot()`; the handler then continues exactly as the one that took it. */
  restore?(state: unknown): void;
}

export type AlertEmitter = (event: AlertEvent) => void;
