import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { gunzipSync } from 'node:zlib';
import type { EdgeCollectorConfig } from '../config/index.js';
import { parseDuration } from '../config/index.js';
import { createLiveSimulator, createMqttSource, type LiveSimulator, type MqttSource } from '../ingest/index.js';
import { GpError } from '../model/index.js';
import { csvRow, isSpoolFull, parseReadings, type Intake } from './intake.js';

/** One source of readings. Lifecycle: create → `start()` → readings flow into the intake → `stop()` (idempotent). */
export interface Collector {
  readonly name: string;
  readonly kind: EdgeCollectorConfig['type'];
  start(): Promise<void>;
  stop(): Promise<void>;
  stats(): CollectorStats;
}

export interface CollectorStats {
  errors: number;
  lastError: string | undefined;
  /** Where it listens (http), or what it reads. */
  address?: string | undefined;
  /** Requests answered 503 because the spool was full (http, block policy). */
  refusedFull?: number | undefined;
}

export interface CollectorContext {
  intake: Intake;
  /** Directory for collector state (file positions). */
  stateDir: string;
  log: (message: string) => void;
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;

export function createCollector(config: EdgeCollectorConfig, context: CollectorContext): Collector {
  switch (config.type) {
    case 'http':
      return new HttpCollector(config, context);
    case 'mqtt':
      return new MqttCollector(config, context);
    case 'modbus':
      return new ModbusCollector(config, context);
    case 'file':
      return new FileCollector(config, context);
    case 'stdin':
      return new StdinCollector(config, context);
    case 'simulator':
      return new SimulatorCollector(config, context);
  }
}

abstract class BaseCollector {
  protected errors = 0;
  protected lastError: string | undefined;
  constructor(
    readonly name: string,
    protected readonly context: CollectorContext,
  ) {}
  protected fail(error: unknown): void {
    this.errors++;
    this.lastError = error instanceof Error ? error.message : String(error);
  }
  stats(): CollectorStats {
    return { errors: this.errors, lastError: this.lastError };
  }
}

/**
 * A local HTTP endpoint that speaks the platform's ingest API (`POST /v1/readings`,
 * `/v1/streams/<stream>/readings`; JSON, array or NDJSON, gzip), so devices can point at the
 * agent instead. 200 means durable in the spool. When the spool is full under the block policy
 * the answer is 503 with Retry-After: the device keeps its readings and retries.
 */
class HttpCollector extends BaseCollector implements Collector {
  readonly kind = 'http' as const;
  private server: Server | undefined;
  private address: string | undefined;
  private refusedFull = 0;
  constructor(
    private readonly config: Extract<EdgeCollectorConfig, { type: 'http' }>,
    context: CollectorContext,
  ) {
    super(config.name, context);
  }

  async start(): Promise<void> {
    const server = createServer((request, response) => void this.handle(request, response));
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.port ?? 8181, this.config.host ?? '127.0.0.1', () => resolve());
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    this.address = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      response.writeHead(status, { 'content-type': 'application/json', ...headers });
      response.end(JSON.stringify(body));
    };
    try {
      const url = new URL(request.url ?? '/', 'http://agent');
      const match = /^\/v1\/streams\/([^/]+)\/readings$/.exec(url.pathname);
      if (request.method !== 'POST' || (match === null && url.pathname !== '/v1/readings' && url.pathname !== '/readings')) {
        send(404, { error: { code: 'GP_NOT_FOUND', message: `expected POST /v1/readings or /v1/streams/<stream>/readings, got ${request.method} ${url.pathname}` } });
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of request) {
        size += (chunk as Buffer).length;
        if (size > MAX_BODY_BYTES) {
          send(413, { error: { code: 'GP_PAYLOAD_TOO_LARGE', message: `body: expected at most ${MAX_BODY_BYTES} bytes, got more` } });
          return;
        }
        chunks.push(chunk as Buffer);
      }
      let body = Buffer.concat(chunks);
      if ((request.headers['content-encoding'] ?? '').includes('gzip')) body = gunzipSync(body);
      const ndjson = (request.headers['content-type'] ?? '').includes('ndjson');
      const parsed = parseReadings(body.toString('utf8'), ndjson);
      const stream = match === null ? this.config.stream : decodeURIComponent(match[1] as string);
      if (stream !== undefined && !this.context.intake.streamNames.includes(stream)) {
        send(404, { error: { code: 'GP_NOT_FOUND', message: `stream: expected one of ${this.context.intake.streamNames.join(', ')}, got ${JSON.stringify(stream)}` } });
        return;
      }
      const result = await this.context.intake.take(parsed.items, { stream, wait: false, collector: this.name });
      send(200, { accepted: result.accepted, rejected: [...parsed.rejected, ...result.rejected].sort((a, b) => a.index - b.index), durable: true });
    } catch (error) {
      if (isSpoolFull(error)) {
        this.refusedFull++;
        send(503, { error: { code: 'GP_UNAVAILABLE', message: (error as Error).message } }, { 'retry-after': '1' });
        return;
      }
      this.fail(error);
      send(error instanceof GpError && error.domain === 'user' ? 400 : 500, { error: { code: error instanceof GpError ? error.code : 'GP_INTERNAL', message: (error as Error).message } });
    }
  }

  override stats(): CollectorStats {
    return { ...super.stats(), address: this.address, refusedFull: this.refusedFull };
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * MQTT subscription (the platform's MQTT source, QoS 1): a message is acknowledged only once
 * its readings are durable in the spool, so while the spool is full under the block policy the
 * agent stops acknowledging and the broker keeps the messages.
 */
class MqttCollector extends BaseCollector implements Collector {
  readonly kind = 'mqtt' as const;
  private source: MqttSource | undefined;
  constructor(
    private readonly config: Extract<EdgeCollectorConfig, { type: 'mqtt' }>,
    context: CollectorContext,
  ) {
    super(config.name, context);
  }

  async start(): Promise<void> {
    const source = createMqttSource({
      url: this.config.url,
      topics: this.config.topics.map((t) => ({ topic: t.topic, stream: t.stream ?? this.config.stream, keyLevel: t.keyLevel })),
      qos: 1,
      clientId: this.config.clientId,
      onReadings: async (batch) => {
        await this.context.intake.take(batch.items, { stream: batch.stream, defaultKey: batch.keyFromTopic, wait: true, collector: this.name });
      },
    });
    await source.ready();
    this.source = source;
  }

  override stats(): CollectorStats {
    const mqtt = this.source?.stats();
    return { errors: this.errors + (mqtt?.errors ?? 0), lastError: mqtt?.lastError ?? this.lastError, address: this.config.url.replace(/\/\/[^@/]*@/, '//***@') };
  }

  async stop(): Promise<void> {
    const source = this.source;
    this.source = undefined;
    await source?.close();
  }
}

type ModbusRegisterConfig = Extract<EdgeCollectorConfig, { type: 'modbus' }>['registers'][number];

interface ModbusClient {
  connectTCP(ip: string, options: { port: number }): Promise<void>;
  setID(id: number): void;
  setTimeout(ms: number): void;
  readHoldingRegisters(address: number, length: number): Promise<{ data: number[] }>;
  readInputRegisters(address: number, length: number): Promise<{ data: number[] }>;
  close(callback: () => void): void;
  isOpen: boolean;
}

/** Decodes one register value (one or two 16-bit words) by its configured type, scale and offset. */
export function decodeRegister(register: ModbusRegisterConfig, words: readonly number[]): number {
  const type = register.type ?? 'uint16';
  const high = words[0] ?? 0;
  const low = words[1] ?? 0;
  const [first, second] = register.wordOrder === 'little' ? [low, high] : [high, low];
  let raw: number;
  if (type === 'uint16') raw = high & 0xffff;
  else if (type === 'int16') raw = (high << 16) >> 16;
  else {
    const buffer = Buffer.alloc(4);
    buffer.writeUInt16BE(first & 0xffff, 0);
    buffer.writeUInt16BE(second & 0xffff, 2);
    raw = type === 'uint32' ? buffer.readUInt32BE(0) : type === 'int32' ? buffer.readInt32BE(0) : buffer.readFloatBE(0);
  }
  return raw * (register.scale ?? 1) + (register.offset ?? 0);
}

function wordsOf(register: ModbusRegisterConfig): number {
  return (register.type ?? 'uint16').endsWith('16') ? 1 : 2;
}

/**
 * Polls a Modbus TCP server every `interval`: each register (holding or input, 16 or 32 bits)
 * becomes a metric of one reading `{ <key field>: device, timestamp, <metric>: value, ... }`.
 * A poll that fails is counted and the connection reopened on the next one; no reading is
 * made up for it.
 */
class ModbusCollector extends BaseCollector implements Collector {
  readonly kind = 'modbus' as const;
  private client: ModbusClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private stopped = false;
  polls = 0;
  constructor(
    private readonly config: Extract<EdgeCollectorConfig, { type: 'modbus' }>,
    context: CollectorContext,
  ) {
    super(config.name, context);
  }

  async start(): Promise<void> {
    const intervalMs = parseDuration(this.config.interval ?? '1s');
    const tick = (): void => {
      if (this.stopped) return;
      this.polling = this.poll()
        .catch((error: unknown) => this.fail(error))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, intervalMs);
        });
    };
    tick();
    await this.polling;
  }

  private async connect(): Promise<ModbusClient> {
    if (this.client?.isOpen === true) return this.client;
    const module = (await import('modbus-serial')) as unknown as { default: new () => ModbusClient };
    const client = new module.default();
    await client.connectTCP(this.config.host, { port: this.config.port ?? 502 });
    client.setID(this.config.unitId ?? 1);
    client.setTimeout(parseDuration(this.config.timeout ?? '2s'));
    this.client = client;
    return client;
  }

  private async poll(): Promise<void> {
    let client: ModbusClient;
    try {
      client = await this.connect();
    } catch (error) {
      throw new GpError('GP_UNAVAILABLE', `modbus ${this.config.host}:${this.config.port ?? 502}: cannot connect: ${(error as Error).message}`);
    }
    const reading: Record<string, unknown> = { timestamp: Date.now() };
    try {
      for (const register of this.config.registers) {
        const count = wordsOf(register);
        const result = register.kind === 'input' ? await client.readInputRegisters(register.address, count) : await client.readHoldingRegisters(register.address, count);
        reading[register.metric] = decodeRegister(register, result.data);
      }
    } catch (error) {
      this.client = undefined;
      client.close(() => undefined);
      throw new GpError('GP_UNAVAILABLE', `modbus ${this.config.host}:${this.config.port ?? 502} unit ${this.config.unitId ?? 1}: read failed: ${(error as Error).message}`);
    }
    this.polls++;
    await this.context.intake.take([reading], { stream: this.config.stream, defaultKey: this.config.device, wait: true, collector: this.name });
  }

  override stats(): CollectorStats {
    return { ...super.stats(), address: `modbus://${this.config.host}:${this.config.port ?? 502}/${this.config.unitId ?? 1}` };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.polling;
    const client = this.client;
    this.client = undefined;
    if (client !== undefined) await new Promise<void>((resolve) => client.close(() => resolve()));
  }
}

/**
 * Tails a CSV (first line the header) or NDJSON file: new complete lines are read every `poll`
 * (default 500 ms); the position after the last durable line is kept in the agent's state
 * directory, so a restart goes on where it stopped. A file that shrinks was replaced: it is read
 * from the start.
 */
class FileCollector extends BaseCollector implements Collector {
  readonly kind = 'file' as const;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private position = 0;
  private header: string[] | undefined;
  private readonly statePath: string;
  constructor(
    private readonly config: Extract<EdgeCollectorConfig, { type: 'file' }>,
    context: CollectorContext,
  ) {
    super(config.name, context);
    this.statePath = join(context.stateDir, `file-${config.name}.json`);
  }

  async start(): Promise<void> {
    mkdirSync(this.context.stateDir, { recursive: true });
    try {
      const state = JSON.parse(readFileSync(this.statePath, 'utf8')) as { position: number; header?: string[] };
      this.position = state.position;
      this.header = state.header;
    } catch {
      this.position = 0;
    }
    const pollMs = parseDuration(this.config.poll ?? '500ms');
    const tick = (): void => {
      if (this.stopped) return;
      this.running = this.readMore()
        .catch((error: unknown) => this.fail(error))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(tick, pollMs);
        });
    };
    tick();
    await this.running;
  }

  private format(): 'csv' | 'ndjson' {
    return this.config.format ?? (this.config.path.toLowerCase().endsWith('.csv') ? 'csv' : 'ndjson');
  }

  private async readMore(): Promise<void> {
    const info = await stat(this.config.path).catch(() => undefined);
    if (info === undefined) return;
    if (info.size < this.position) {
      this.position = 0;
      this.header = undefined;
    }
    if (info.size === this.position) return;
    const handle = await open(this.config.path, 'r');
    try {
      while (!this.stopped) {
        const length = Math.min(4 * 1024 * 1024, info.size - this.position);
        if (length <= 0) break;
        const buffer = Buffer.alloc(length);
        const { bytesRead } = await handle.read(buffer, 0, length, this.position);
        const text = buffer.subarray(0, bytesRead).toString('utf8');
        const lastNewline = text.lastIndexOf('\n');
        if (lastNewline < 0) break; // an incomplete line: wait for its end
        const complete = text.slice(0, lastNewline);
        const consumed = Buffer.byteLength(complete, 'utf8') + 1;
        let items: unknown[];
        if (this.format() === 'csv') {
          items = [];
          for (const line of complete.split('\n')) {
            if (line.trim() === '') continue;
            if (this.header === undefined) this.header = line.split(',').map((h) => h.trim().replace(/^"(.*)"$/, '$1'));
            else items.push(csvRow(this.header, line));
          }
        } else items = parseReadings(complete, true).items;
        await this.context.intake.take(items, { stream: this.config.stream, wait: true, collector: this.name });
        this.position += consumed;
        const temporary = `${this.statePath}.tmp`;
        writeFileSync(temporary, JSON.stringify({ position: this.position, header: this.header }));
        renameSync(temporary, this.statePath);
      }
    } finally {
      await handle.close();
    }
  }

  override stats(): CollectorStats {
    return { ...super.stats(), address: this.config.path };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.running;
  }
}

/** Reads NDJSON (or CSV with a header line) from standard input until it ends. */
class StdinCollector extends BaseCollector implements Collector {
  readonly kind = 'stdin' as const;
  private done: Promise<void> | undefined;
  private reader: ReturnType<typeof createInterface> | undefined;
  constructor(
    private readonly config: Extract<EdgeCollectorConfig, { type: 'stdin' }>,
    context: CollectorContext,
  ) {
    super(config.name, context);
  }

  start(): Promise<void> {
    const reader = createInterface({ input: process.stdin, crlfDelay: Infinity });
    this.reader = reader;
    let header: string[] | undefined;
    const csv = this.config.format === 'csv';
    this.done = (async () => {
      let pending: unknown[] = [];
      const flush = async (): Promise<void> => {
        if (pending.length === 0) return;
        const items = pending;
        pending = [];
        await this.context.intake.take(items, { stream: this.config.stream, wait: true, collector: this.name });
      };
      try {
        for await (const line of reader) {
          if (line.trim() === '') continue;
          if (csv) {
            if (header === undefined) header = line.split(',').map((h) => h.trim());
            else pending.push(csvRow(header, line));
          } else {
            const parsed = parseReadings(line, true);
            pending.push(...parsed.items);
            if (parsed.rejected.length > 0) this.fail(new Error(parsed.rejected[0]?.reason));
          }
          if (pending.length >= 1000) await flush();
        }
        await flush();
      } catch (error) {
        this.fail(error);
      }
    })();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.reader?.close();
    await this.done;
  }
}

/** The built-in simulated fleet (src/ingest's live simulator), in real time. */
class SimulatorCollector extends BaseCollector implements Collector {
  readonly kind = 'simulator' as const;
  private simulator: LiveSimulator | undefined;
  constructor(
    private readonly config: Extract<EdgeCollectorConfig, { type: 'simulator' }>,
    context: CollectorContext,
  ) {
    super(config.name, context);
  }

  async start(): Promise<void> {
    const simulator = createLiveSimulator({
      meters: this.config.meters ?? 20,
      machines: this.config.machines ?? 0,
      intervalMs: parseDuration(this.config.interval ?? '1s'),
      anomalyEveryMs: parseDuration(this.config.anomalyEvery ?? '5m'),
      seed: this.config.seed ?? 1,
      backfillMs: 0,
      clock: Date.now,
      emit: async (lines) => {
        await this.context.intake.take(parseReadings(lines.join('\n'), true).items, { wait: true, collector: this.name });
      },
      onError: (error) => this.fail(error),
    });
    await simulator.start();
    this.simulator = simulator;
  }

  async stop(): Promise<void> {
    const simulator = this.simulator;
    this.simulator = undefined;
    await simulator?.stop();
  }
}
