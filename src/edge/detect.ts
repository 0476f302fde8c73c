import { createAlertManager, type AlertManager } from '../alerts/index.js';
import type { EdgeConfig } from '../config/index.js';
import { createDetectors } from '../detectors/index.js';
import { ReadingDecoder, StreamEngine } from '../engine/index.js';
import type { AlertEvent, Severity } from '../model/index.js';

/** One alert event raised on the agent, as `/status` lists it (newest first). */
export interface LocalAlertEvent {
  /** The transition: open, update, escalate, resolve, reopen. */
  kind: string;
  alertId: string;
  type: string;
  key: string;
  metric: string | null;
  severity: Severity;
  status: string;
  /** Event time of the transition and of the alert's opening (epoch ms). */
  time: number;
  openedAt: number;
  score: number;
  explain: string;
}

export interface LocalDetectionStats {
  stream: string;
  detectors: readonly string[];
  /** Readings checked (accepted by the local engine). */
  readings: number;
  /** Readings of the stream that could not be decoded against its schema (they are still spooled and forwarded). */
  invalid: number;
  findings: number;
  alertsOpened: number;
  alertEvents: number;
  /** Alerts open now. */
  open: number;
  /** Failures inside detection (never stop collection). */
  errors: number;
  recent: LocalAlertEvent[];
}

/**
 * Local detection on the edge agent: the platform's own engine, detectors and alert manager run
 * on the readings of one stream as they are collected (after they are durable in the spool), so
 * alerts fire while the link to the platform is down. The agent logs every alert event, counts
 * them in `/metrics` and lists the recent ones in `/status`. The platform still detects on
 * everything it receives; local alerts are not forwarded. State lives in memory: after a restart
 * the detectors warm up again.
 *
 * @example
 * const detection = new LocalDetection(config.detect, console.log);
 * intake.onReading = (stream, reading) => detection.observe(stream, reading);
 */
export class LocalDetection {
  private readonly engine: StreamEngine;
  private readonly decoder: ReadingDecoder;
  private readonly managers: AlertManager[] = [];
  private readonly recent: LocalAlertEvent[] = [];
  private readonly counts = { readings: 0, invalid: 0, alertsOpened: 0, alertEvents: 0, errors: 0 };
  private sequence = 0;
  private lastErrorLog = 0;

  constructor(
    private readonly config: NonNullable<EdgeConfig['detect']>,
    private readonly log: (line: string) => void,
  ) {
    const { schema } = config;
    this.decoder = new ReadingDecoder(schema);
    this.engine = new StreamEngine({
      schema,
      detectors: createDetectors(schema),
      partitions: 1,
      wallClock: Date.now,
      createFindingHandler: (emit) => {
        const manager = createAlertManager({ policy: schema.alerts, emit });
        this.managers.push(manager);
        return manager;
      },
      outputs: { alert: (event) => this.onAlert(event) },
    });
  }

  /** A reading collected (and durable in the spool); readings of other streams are ignored. */
  observe(stream: string, reading: Record<string, unknown>): void {
    if (stream !== this.config.schema.name) return;
    try {
      const problem = this.decoder.decodeObject(reading, ++this.sequence);
      if (problem !== null) {
        this.counts.invalid++;
        return;
      }
      const outcome = this.engine.process(this.decoder.reading);
      if (outcome === 'ON_TIME' || outcome === 'LATE') this.counts.readings++;
    } catch (error) {
      // A detector failing must never stop collection: count it, say it (at most every 10 s).
      this.counts.errors++;
      if (Date.now() - this.lastErrorLog >= 10_000) {
        this.lastErrorLog = Date.now();
        this.log(`local detection: ${(error as Error).message}`);
      }
    }
  }

  stats(): LocalDetectionStats {
    return {
      stream: this.config.schema.name,
      detectors: this.config.detectors,
      ...this.counts,
      findings: this.engine.stats.findings,
      open: this.managers.reduce((sum, manager) => sum + manager.openCount(), 0),
      recent: this.recent.slice(),
    };
  }

  private onAlert(event: AlertEvent): void {
    const { alert, transition } = event;
    this.counts.alertEvents++;
    if (transition.kind === 'open' || transition.kind === 'reopen') this.counts.alertsOpened++;
    this.recent.unshift({
      kind: transition.kind,
      alertId: alert.id,
      type: alert.type,
      key: alert.key,
      metric: alert.metric ?? null,
      severity: transition.severity,
      status: transition.status,
      time: transition.time,
      openedAt: alert.openedAt,
      score: transition.score,
      explain: transition.explain,
    });
    if (this.recent.length > this.config.recentAlerts) this.recent.length = this.config.recentAlerts;
    this.log(`local alert ${transition.kind}: ${alert.type} ${alert.key}${alert.metric === undefined ? '' : ` ${alert.metric}`} (${transition.severity}, ${transition.status}) at ${new Date(transition.time).toISOString()}: ${transition.explain}`);
  }
}
