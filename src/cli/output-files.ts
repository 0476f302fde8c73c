import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { createGzip, type Gzip } from 'node:zlib';
import {
  STAT_NAMES,
  STATS_PER_METRIC,
  aggregateToJson,
  type Aggregate,
  type AlertEvent,
  type OpsEvent,
  type Reading,
} from '../model/index.js';

/**
 * Buffered line writer for the `--*-out` files: NDJSON by default, CSV when the path ends in
 * `.csv`, gzip-compressed when it ends in `.gz`. Lines are joined into large chunks, and
 * `drain()` lets the producer wait when the disk is slower than the engine, so memory stays
 * bounded. Nothing here depends on the wall clock, so the same input writes the same bytes.
 */
export class LineFile {
  readonly csv: boolean;
  private readonly out: WriteStream;
  private readonly sink: WriteStream | Gzip;
  private chunk: string[] = [];
  private chunkBytes = 0;
  private headerWritten = false;
  lines = 0;

  constructor(readonly path: string) {
    const plain = path.replace(/\.gz$/, '');
    this.csv = plain.endsWith('.csv');
    mkdirSync(dirname(path), { recursive: true });
    this.out = createWriteStream(path);
    if (path.endsWith('.gz')) {
      const gzip = createGzip();
      gzip.pipe(this.out);
      this.sink = gzip;
    } else this.sink = this.out;
  }

  header(line: string): void {
    if (this.headerWritten) return;
    this.headerWritten = true;
    this.line(line);
    this.lines--;
  }

  line(text: string): void {
    this.chunk.push(text);
    this.chunkBytes += text.length + 1;
    this.lines++;
    if (this.chunkBytes > 1 << 20) this.flushChunk();
  }

  private flushChunk(): void {
    if (this.chunk.length === 0) return;
    this.chunk.push('');
    this.sink.write(this.chunk.join('\n'));
    this.chunk = [];
    this.chunkBytes = 0;
  }

  /** Resolves once the file has room for more. */
  async drain(): Promise<void> {
    this.flushChunk();
    if (!this.sink.writableNeedDrain) return;
    await new Promise<void>((resolve) => this.sink.once('drain', resolve));
  }

  async close(): Promise<void> {
    this.flushChunk();
    await new Promise<void>((resolve, reject) => {
      this.out.once('error', reject);
      this.out.once('close', resolve);
      this.sink.end();
    });
  }
}

function csvCell(value: string | number | null | undefined): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  const text = value;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function writeAggregate(file: LineFile, a: Aggregate): void {
  if (!file.csv) {
    file.line(JSON.stringify(aggregateToJson(a)));
    return;
  }
  const statColumns = a.metrics.flatMap((m) => STAT_NAMES.map((s) => `${m}_${s}`));
  file.header(['stream', 'key', 'site', 'window', 'start', 'end', 'revision', 'count', 'energy_kwh', ...statColumns].join(','));
  const cells: Array<string | number | null | undefined> = [a.stream, a.key, a.site, a.window, a.start, a.end, a.revision, a.count, a.energyKwh];
  for (let i = 0; i < a.metrics.length * STATS_PER_METRIC; i++) cells.push(a.stats[i]);
  file.line(cells.map(csvCell).join(','));
}

export function writeAlertEvent(file: LineFile, e: AlertEvent): void {
  if (!file.csv) {
    file.line(JSON.stringify(e));
    return;
  }
  file.header('transition_id,alert_id,seq,kind,time,status,stream,key,site,type,metric,severity,score,opened_at,resolved_at,explain');
  const a = e.alert;
  const t = e.transition;
  file.line([t.id, a.id, t.seq, t.kind, t.time, t.status, a.stream, a.key, a.site, a.type, a.metric, t.severity, t.score, a.openedAt, a.resolvedAt, t.explain].map(csvCell).join(','));
}

export function writeOps(file: LineFile, e: OpsEvent): void {
  if (!file.csv) {
    file.line(JSON.stringify(e));
    return;
  }
  file.header('kind,stream,key,time,watermark,offset,lag_ms,missed,field,expected,got,reason');
  file.line([e.kind, e.stream, e.key, e.time, e.watermark, e.offset, e.lagMs, e.missed, e.field, e.expected, e.got, e.reason].map(csvCell).join(','));
}

export function writeScore(file: LineFile, r: Reading, score: number, metricNames: readonly string[]): void {
  if (!file.csv) {
    const values: Record<string, number | null> = {};
    metricNames.forEach((m, i) => {
      const v = r.values[i]!;
      values[m] = Number.isFinite(v) ? v : null;
    });
    file.line(JSON.stringify({ stream: r.stream, key: r.key, time: r.time, score, values }));
    return;
  }
  file.header(['stream', 'key', 'timestamp', ...metricNames, 'score'].join(','));
  const cells: Array<string | number | null | undefined> = [r.stream, r.key, r.time];
  for (let i = 0; i < metricNames.length; i++) cells.push(r.values[i]);
  cells.push(score);
  file.line(cells.map(csvCell).join(','));
}
