import { GpError, opsEvent, type OpsEvent, type StreamSchema } from '../model/index.js';
import type { EngineSnapshot } from './checkpoint.js';
import { describeJson } from './checkpoint-codec.js';
import { describeProblem, ReadingDecoder, type DecodeError } from './decoder.js';
import type { PreparedRestore, StreamEngine } from './stream-engine.js';

/** A checkpoint of a router: one engine checkpoint per stream, in the router's order. */
export interface RouterSnapshot {
  version: 1;
  streams: EngineSnapshot[];
}

/**
 * Sends records to the engine of their stream. With one stream (or a forced one) every record
 * goes there; otherwise a record belongs to the first stream whose device-id field it has
 * (`meterId` → power, `machine_id` → machines), so one file may mix streams.
 * Undecodable records become `invalid` ops events with the field, what was expected and what
 * was got, and processing goes on.
 *
 * @example
 * const router = new StreamRouter([powerEngine, machinesEngine]);
 * for await (const line of lines) router.processText(line.text, line.offset);
 * router.finish();
 */
export class StreamRouter {
  private readonly decoders: ReadingDecoder[];
  private readonly forced: number;

  constructor(
    readonly engines: readonly StreamEngine[],
    forcedStream?: string,
  ) {
    if (engines.length === 0) throw new Error('StreamRouter needs at least one engine');
    this.decoders = engines.map((e) => new ReadingDecoder(e.schema));
    this.forced = forcedStream === undefined ? (engines.length === 1 ? 0 : -1) : engines.findIndex((e) => e.schema.name === forcedStream);
    if (forcedStream !== undefined && this.forced < 0) throw new Error(`unknown stream ${forcedStream}`);
  }

  /** An NDJSON line (or a JSON text). */
  processText(text: string, offset: number): void {
    if (this.forced >= 0) {
      this.deliver(this.forced, this.decoders[this.forced]!.decodeText(text, offset), offset);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      const problem = this.decoders[0]!.decodeText(text, offset) ?? { reason: (e as Error).message, field: undefined, expected: 'a JSON object', got: undefined, key: undefined, time: undefined };
      this.reject(0, problem, offset);
      return;
    }
    this.processObject(parsed, offset);
  }

  /**
   * An NDJSON line as the UTF-8 bytes `start`…`end` of `bytes` (a file's or a broker message's
   * buffer): with one stream the common record is decoded where it is, without a string.
   */
  processBytes(bytes: Buffer, start: number, end: number, offset: number): void {
    if (this.forced < 0) {
      this.processText(bytes.toString('utf8', start, end), offset);
      return;
    }
    this.deliver(this.forced, this.decoders[this.forced]!.decodeBytes(bytes, start, end, offset), offset);
  }

  /** A parsed record (a JSON object, or a CSV row of strings). */
  processObject(record: unknown, offset: number): void {
    const index = this.forced >= 0 ? this.forced : this.streamOf(record);
    this.deliver(index, this.decoders[index]!.decodeObject(record, offset), offset);
  }

  /** The reading just decoded by the stream's decoder to its engine (with the decoder's key id), or its problem to ops. */
  private deliver(index: number, problem: DecodeError | null, offset: number): void {
    if (problem) {
      this.reject(index, problem, offset);
      return;
    }
    const decoder = this.decoders[index]!;
    this.engines[index]!.process(decoder.reading, decoder.keyId);
  }

  /** A record that failed before decoding (an oversize line, a broken CSV row). */
  processError(offset: number, reason: string, detail: Partial<Pick<OpsEvent, 'field' | 'expected' | 'got'>> = {}): void {
    const engine = this.engines[this.forced >= 0 ? this.forced : 0]!;
    engine.rejectInvalid(opsEvent('invalid', engine.schema.name, reason, { offset, watermark: engine.watermark, ...detail }));
  }

  finish(): void {
    for (const engine of this.engines) engine.finish();
  }

  /**
   * A checkpoint of every engine (see `StreamEngine.snapshot`), plain JSON. The router itself
   * keeps no state between records.
   *
   * @example
   * writeFileSync(path, JSON.stringify(router.snapshot()));
   * freshRouter.restore(JSON.parse(readFileSync(path, 'utf8')));
   */
  snapshot(): RouterSnapshot {
    return { version: 1, streams: this.engines.map((e) => e.snapshot()) };
  }

  /**
   * Restores every engine from a `snapshot()` taken by a router of the same streams (matched by
   * name). All or nothing: every engine's checkpoint is checked before any engine changes, so
   * after an error the router is as fresh as before and another checkpoint can be tried.
   * Throws GP_INPUT_INVALID when a stream is missing, extra or does not fit.
   */
  restore(snapshot: unknown): void {
    const fail = (field: string, expected: string, got: unknown): GpError =>
      new GpError('GP_INPUT_INVALID', `router checkpoint ${field}: expected ${expected}, got ${describeJson(got)}`, { field, expected, got: describeJson(got) });
    if (typeof snapshot !== 'object' || snapshot === null || Array.isArray(snapshot)) throw fail('/', 'a router checkpoint object', snapshot);
    const root = snapshot as Record<string, unknown>;
    if (root.version !== 1) throw fail('/version', '1', root.version);
    if (!Array.isArray(root.streams)) throw fail('/streams', 'an array', root.streams);
    const saved = new Map<string, unknown>();
    (root.streams as unknown[]).forEach((entry, i) => {
      const name = typeof entry === 'object' && entry !== null ? (entry as Record<string, unknown>).stream : undefined;
      if (typeof name !== 'string' || saved.has(name)) throw fail(`/streams/${i}/stream`, 'the name of a stream, once', name);
      saved.set(name, entry);
    });
    const names = this.engines.map((e) => e.schema.name);
    const missing = names.filter((n) => !saved.has(n));
    const extra = [...saved.keys()].filter((n) => !names.includes(n));
    if (missing.length > 0 || extra.length > 0) throw fail('/streams', `the streams ${names.join(', ')}`, [...saved.keys()].join(', '));
    const prepared: PreparedRestore[] = this.engines.map((e) => e.prepareRestore(saved.get(e.schema.name)));
    let done = 0;
    try {
      for (; done < prepared.length; done++) prepared[done]!.restoreHandlers();
    } catch (error) {
      for (let i = 0; i < done; i++) prepared[i]!.undoHandlers();
      throw error;
    }
    for (const p of prepared) p.commit();
  }

  private streamOf(record: unknown): number {
    if (record !== null && typeof record === 'object' && !Array.isArray(record)) {
      const obj = record as Record<string, unknown>;
      for (let i = 0; i < this.decoders.length; i++) {
        if (obj[this.decoders[i]!.schema.keyField] !== undefined) return i;
      }
    }
    return 0;
  }

  private reject(index: number, problem: DecodeError, offset: number): void {
    const engine = this.engines[index]!;
    const schemas: StreamSchema[] = this.engines.map((e) => e.schema);
    const reason =
      this.forced < 0 && problem.field === engine.schema.keyField && problem.got?.startsWith('nothing')
        ? `record has none of the device id fields ${schemas.map((s) => s.keyField).join(', ')}`
        : problem.reason;
    engine.rejectInvalid(
      opsEvent('invalid', engine.schema.name, describeProblem(problem, reason), {
        key: problem.key,
        time: problem.time,
        offset,
        watermark: engine.watermark,
        field: problem.field,
        expected: problem.expected,
        got: problem.got,
      }),
    );
  }
}
