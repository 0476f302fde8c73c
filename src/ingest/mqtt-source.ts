/**
 * MQTT ingest: subscribes to topic filters on a broker and hands each message's readings to the
 * caller, which decodes them and appends them to the durable log.
 *
 * At-least-once with QoS 1: the PUBACK of a message is sent only after `onReadings` resolved, so a
 * message whose readings never became durable (a crash, a failed append, a handler that hangs) is
 * delivered again. The session is persistent (Clean Start off, a stable client id, a session expiry),
 * so messages published while gridpulse is down are delivered when it connects again. Redelivery means
 * a reading can arrive twice; the engine's duplicate detection and idempotent writes absorb that.
 *
 * The `mqtt` package is loaded on `ready()`, so the embedded default starts without it.
 */
import { hostname } from 'node:os';
import type { IClientOptions, IPublishPacket, ISubscriptionMap, MqttClient } from 'mqtt';
import { GpError } from '../model/index.js';

/** A topic filter to subscribe to and what its messages carry. The `topics` entries of `MqttConfig` fit. */
export interface MqttTopicRoute {
  /** An MQTT topic filter, e.g. `gridpulse/+/readings` (`+` one level, `#` the rest; `$share/group/...` allowed). */
  topic: string;
  /** The stream its readings belong to; undefined: the caller picks it from the fields (as for NDJSON files). */
  stream?: string | undefined;
  /** The 0-based topic level holding the device id, e.g. 1 for `gridpulse/<meterId>/readings`. */
  keyLevel?: number | undefined;
}

/** One unparseable part of a message: `index` counts the message's parts (JSON values or NDJSON lines) from 0. */
export interface MqttRejection {
  index: number;
  reason: string;
  /** 1-based line of the payload, for NDJSON. */
  line?: number | undefined;
}

/** The readings of one MQTT message, parsed but not yet decoded. */
export interface MqttBatch {
  /** The stream of the topic filter the message matched, or undefined when that route names none (or none matched). */
  stream: string | undefined;
  topic: string;
  /** The device id read from the route's `keyLevel` of the topic; the caller uses it when a reading lacks its key field. */
  keyFromTopic: string | undefined;
  /** The parsed parts: the object, the array's elements, or each NDJSON line's value, in order (rejected parts left out). */
  items: unknown[];
  rejected: MqttRejection[];
  /** Arrival (wall clock), epoch ms. */
  received: number;
  /** True when the broker marked the message as sent before: the readings may already be in the log. */
  redelivered: boolean;
}

export interface MqttSourceOptions {
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883` (`mqtts://`, `ws://`, `wss://`, `tcp://`; credentials as `mqtt://user:pass@host`). */
  url: string;
  topics: readonly MqttTopicRoute[];
  /** 1: at-least-once (acknowledged after `onReadings`); 0: at-most-once. */
  qos: 0 | 1;
  /** Must be stable across restarts for the persistent session, and unique per running instance. Default `gridpulse-<host name>`. */
  clientId?: string | undefined;
  /**
   * Called once per message, one message at a time, in arrival order. Resolve only when the
   * readings are durable: that is when the message is acknowledged. Rejecting (or not settling
   * within `ackTimeoutMs`) leaves it unacknowledged and drops the connection, so the broker
   * delivers it again after the reconnect (with backoff). Bad readings are the caller's to report:
   * reject only when the readings could not be kept, since the message then comes again and
   * holds up the ones behind it.
   */
  onReadings(batch: MqttBatch): Promise<void>;
  /** How long `ready()` keeps trying to reach the broker (default 10 s). */
  connectTimeoutMs?: number | undefined;
  /** Reconnect delay after a drop, doubling up to `reconnectMaxMs` while the broker stays unreachable or deliveries keep failing (defaults 1 s and 30 s). */
  reconnectMinMs?: number | undefined;
  reconnectMaxMs?: number | undefined;
  /** A message whose `onReadings` has not settled by then counts as failed (default 30 s). */
  ackTimeoutMs?: number | undefined;
  /** How long `close()` waits for a delivery in progress to finish and be acknowledged (default 5 s). */
  closeTimeoutMs?: number | undefined;
  /** How long the broker keeps the session (subscriptions, queued messages) while gridpulse is away (default 7 days). */
  sessionExpirySec?: number | undefined;
  /** Larger payloads are rejected whole, with a reason (default 16 MiB). */
  maxPayloadBytes?: number | undefined;
  /** MQTT keepalive (default 30 s). */
  keepaliveSec?: number | undefined;
}

export interface MqttSourceStats {
  connected: boolean;
  /** Messages received (redeliveries included). */
  messages: number;
  /** Messages received again after an unacknowledged first delivery (the broker's dup flag). */
  redelivered: number;
  /** Messages acknowledged to the broker (QoS 1) or handled (QoS 0). */
  acknowledged: number;
  /** Readings handed over in messages whose `onReadings` resolved. */
  readings: number;
  /** Unparseable parts handed over as rejected. */
  rejected: number;
  /** Messages with an empty payload (e.g. a retained message being cleared): nothing to hand over. */
  empty: number;
  /** Deliveries whose `onReadings` rejected or timed out. */
  failedDeliveries: number;
  /** Connection errors (refused, lost, keepalive timeouts) plus failed deliveries. */
  errors: number;
  /** Connections lost (dropped by the network or the broker, or after a failed delivery); `close()` is not counted. */
  disconnects: number;
  /** Successful reconnections after the first connection. */
  reconnects: number;
  lastError: string | undefined;
  /** Whether the broker still had our session at the last connection. */
  sessionPresent: boolean;
  /** QoS the broker granted per topic filter. */
  subscriptions: Array<{ topic: string; grantedQos: number }>;
}

/** An MQTT ingest source. Lifecycle: create → `ready()` → messages flow to `onReadings` → `close()`. */
export interface MqttSource {
  readonly kind: 'mqtt';
  /** Connects and subscribes. Rejects with GP_MQTT_FAILED naming the URL when the broker cannot be reached in time, refuses the connection or a subscription. */
  ready(): Promise<void>;
  /** Stops taking messages, lets a delivery in progress finish and be acknowledged (within `closeTimeoutMs`), disconnects keeping the session. Idempotent. */
  close(): Promise<void>;
  stats(): MqttSourceStats;
}

export const MQTT_DEFAULTS = {
  connectTimeoutMs: 10_000,
  reconnectMinMs: 1_000,
  reconnectMaxMs: 30_000,
  ackTimeoutMs: 30_000,
  closeTimeoutMs: 5_000,
  sessionExpirySec: 7 * 24 * 3600,
  maxPayloadBytes: 16 * 1024 * 1024,
  keepaliveSec: 30,
} as const;

/** A connection that lasted this long resets the reconnect backoff. */
const STABLE_CONNECTION_MS = 10_000;

interface CompiledRoute {
  readonly filter: string;
  readonly levels: readonly string[];
  readonly stream: string | undefined;
  readonly keyLevel: number | undefined;
}

/**
 * Creates an MQTT source; nothing connects before `ready()`. Invalid topic filters or key levels
 * throw GP_CONFIG_INVALID here, naming the `/mqtt/topics/<i>` entry.
 *
 * @example
 * const source = createMqttSource({
 *   ...config.mqtt, // url, qos, clientId, topics: [{ topic: 'gridpulse/+/readings', keyLevel: 1 }]
 *   onReadings: async (batch) => { await platform.ingest(batch.stream ?? 'power', withKeys(batch), mqttAuth); },
 * });
 * await source.ready();
 * // ...
 * await source.close();
 */
export function createMqttSource(options: MqttSourceOptions): MqttSource {
  const routes = options.topics.map((route, index) => compileRoute(route, index));
  if (routes.length === 0) {
    throw new GpError('GP_CONFIG_INVALID', '/mqtt/topics: expected at least one topic filter, got none', { path: '/mqtt/topics' });
  }
  const safeUrl = redactUrl(options.url);
  const clientId = options.clientId ?? `gridpulse-${hostname().replace(/[^A-Za-z0-9_-]/g, '-')}`;
  const connectTimeoutMs = options.connectTimeoutMs ?? MQTT_DEFAULTS.connectTimeoutMs;
  const reconnectMinMs = options.reconnectMinMs ?? MQTT_DEFAULTS.reconnectMinMs;
  const reconnectMaxMs = Math.max(reconnectMinMs, options.reconnectMaxMs ?? MQTT_DEFAULTS.reconnectMaxMs);
  const ackTimeoutMs = options.ackTimeoutMs ?? MQTT_DEFAULTS.ackTimeoutMs;
  const closeTimeoutMs = options.closeTimeoutMs ?? MQTT_DEFAULTS.closeTimeoutMs;
  const maxPayloadBytes = options.maxPayloadBytes ?? MQTT_DEFAULTS.maxPayloadBytes;

  const stats: MqttSourceStats = {
    connected: false,
    messages: 0,
    redelivered: 0,
    acknowledged: 0,
    readings: 0,
    rejected: 0,
    empty: 0,
    failedDeliveries: 0,
    errors: 0,
    disconnects: 0,
    reconnects: 0,
    lastError: undefined,
    sessionPresent: false,
    subscriptions: [],
  };
  let client: MqttClient | undefined;
  let readyPromise: Promise<void> | undefined;
  let closePromise: Promise<void> | undefined;
  let closing = false;
  let everConnected = false;
  // Consecutive drops without a successful delivery or a stable connection since: the exponent of the reconnect backoff.
  let failureStreak = 0;
  let connectedAt = 0;
  // Set when a failed delivery dropped the connection; a reconnect alone does not reset the backoff then.
  let deliveryFailing = false;
  let abortConnect: ((error: GpError) => void) | undefined;
  const inFlight = new Set<Promise<void>>();

  const recordError = (message: string): void => {
    stats.errors += 1;
    stats.lastError = message;
  };

  const deliver = async (topic: string, payload: Uint8Array, packet: IPublishPacket): Promise<void> => {
    stats.messages += 1;
    if (packet.dup) stats.redelivered += 1;
    const route = routes.find((r) => topicMatches(r.levels, topic));
    const received = Date.now();
    let batch: MqttBatch;
    if (route === undefined) {
      // A subscription left in the persistent session by an earlier configuration.
      batch = {
        stream: undefined,
        topic,
        keyFromTopic: undefined,
        items: [],
        rejected: [{ index: 0, reason: `topic "${topic}" matches none of the configured topic filters (${routes.map((r) => r.filter).join(', ')})` }],
        received,
        redelivered: packet.dup,
      };
    } else {
      const parsed = parsePayload(payload, maxPayloadBytes);
      if (parsed.items.length === 0 && parsed.rejected.length === 0) {
        stats.empty += 1;
        return;
      }
      batch = { stream: route.stream, topic, keyFromTopic: keyOf(route, topic), ...parsed, received, redelivered: packet.dup };
    }
    await settleWithin(options.onReadings(batch), ackTimeoutMs, `onReadings did not settle within ${ackTimeoutMs} ms`);
    stats.readings += batch.items.length;
    stats.rejected += batch.rejected.length;
    failureStreak = 0;
    deliveryFailing = false;
  };

  const track = (delivery: Promise<void>): Promise<void> => {
    inFlight.add(delivery);
    const untrack = (): void => {
      inFlight.delete(delivery);
    };
    delivery.then(untrack, untrack);
    return delivery;
  };

  const deliveryFailed = (error: unknown, current: MqttClient, stream: MqttClient['stream']): void => {
    stats.failedDeliveries += 1;
    deliveryFailing = true;
    recordError(`delivery failed: ${errorMessage(error)}`);
    // No acknowledgement, and the connection goes: the broker resends unacknowledged messages only
    // when the session resumes (MQTT 5 §4.4). A failure from an earlier connection leaves the current one alone.
    if (!closing && current === client && current.stream === stream) stream.destroy();
  };

  const connect = async (): Promise<void> => {
    const mqtt = await loadMqtt();
    if (closing) throw closedError(safeUrl);
    const clientOptions: IClientOptions = {
      protocolVersion: 5,
      clientId,
      clean: false,
      properties: { sessionExpiryInterval: options.sessionExpirySec ?? MQTT_DEFAULTS.sessionExpirySec },
      keepalive: options.keepaliveSec ?? MQTT_DEFAULTS.keepaliveSec,
      connectTimeout: connectTimeoutMs,
      reconnectPeriod: reconnectMinMs,
      resubscribe: true,
      manualConnect: true,
      // QoS 1: PUBACK only once onReadings resolved. Never calling `done` leaves the message unacknowledged.
      customHandleAcks: (topic, message, packet: IPublishPacket, done) => {
        const current = client;
        if (closing || current === undefined) return;
        const stream = current.stream;
        track(deliver(topic, message, packet)).then(
          () => {
            // After a reconnect the packet id belongs to the new connection's traffic: never acknowledge across connections.
            if (current.stream !== stream || stream.destroyed) return;
            stats.acknowledged += 1;
            done(0);
          },
          (error: unknown) => deliveryFailed(error, current, stream),
        );
      },
    };
    const created = mqtt.connect(options.url, clientOptions);
    client = created;
    // QoS 0 messages do not pass customHandleAcks; handleMessage is mqtt.js's backpressure hook (one message at a time).
    created.handleMessage = (packet, callback) => {
      if (packet.qos !== 0 || closing) {
        callback();
        return;
      }
      const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
      track(deliver(packet.topic, payload, packet)).then(
        () => {
          stats.acknowledged += 1;
          callback();
        },
        (error: unknown) => {
          // At-most-once: the message cannot come again.
          stats.failedDeliveries += 1;
          recordError(`delivery failed (QoS 0, message lost): ${errorMessage(error)}`);
          callback();
        },
      );
    };
    // Runs before mqtt.js schedules its reconnect, so the delay it uses is ours: exponential backoff.
    created.prependListener('close', () => {
      if (stats.connected && !closing) stats.disconnects += 1;
      // A connection that held for a while starts the backoff over (unless deliveries keep failing);
      // one dropped right away (e.g. another instance with the same client id taking over) does not.
      if (stats.connected && Date.now() - connectedAt >= STABLE_CONNECTION_MS && !deliveryFailing) failureStreak = 0;
      stats.connected = false;
      created.options.reconnectPeriod = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** Math.min(failureStreak, 20));
      failureStreak += 1;
    });
    created.on('connect', (connack) => {
      stats.connected = true;
      stats.sessionPresent = connack.sessionPresent;
      if (everConnected) stats.reconnects += 1;
      everConnected = true;
      connectedAt = Date.now();
    });
    created.on('disconnect', (packet) => {
      // The broker ended the session's connection: shutting down, or the client id taken over by another connection.
      const code = packet.reasonCode ?? 0;
      const reason = (mqtt.ReasonCodes as Record<number, string | undefined>)[code];
      recordError(`broker ${safeUrl} closed the connection: reason code ${code}${reason ? ` (${reason})` : ''}`);
    });
    created.on('error', (error) => {
      recordError(errorMessage(error));
    });

    await new Promise<void>((resolve, reject) => {
      const fail = (error: GpError): void => {
        clearTimeout(timer);
        created.removeListener('connect', onConnect);
        created.removeListener('error', onError);
        abortConnect = undefined;
        created.end(true);
        if (client === created) client = undefined;
        reject(error);
      };
      const onConnect = (): void => {
        clearTimeout(timer);
        created.removeListener('error', onError);
        abortConnect = undefined;
        resolve();
      };
      const onError = (error: Error & { code?: unknown }): void => {
        // A CONNACK refusal (bad credentials, client id not allowed) will not change by retrying.
        if (typeof error.code === 'number') {
          fail(new GpError('GP_MQTT_FAILED', `MQTT broker ${safeUrl} refused the connection of client "${clientId}": ${error.message}`, { url: safeUrl, clientId, reasonCode: error.code }, { cause: error }));
        }
      };
      const timer = setTimeout(() => {
        const why = stats.lastError === undefined ? 'no answer' : stats.lastError;
        fail(new GpError('GP_MQTT_FAILED', `MQTT broker ${safeUrl} not reachable within ${formatSeconds(connectTimeoutMs)}: ${why}`, { url: safeUrl, clientId }));
      }, connectTimeoutMs);
      abortConnect = fail;
      created.once('connect', onConnect);
      created.on('error', onError);
      created.connect();
    });

    const request: ISubscriptionMap = {};
    for (const route of routes) request[route.filter] = { qos: options.qos, rh: 1 };
    let granted: Array<{ topic: string; qos: number }>;
    try {
      granted = await created.subscribeAsync(request);
    } catch (error) {
      created.end(true);
      if (client === created) client = undefined;
      if (closing) throw closedError(safeUrl);
      throw new GpError('GP_MQTT_FAILED', `MQTT broker ${safeUrl} did not accept the subscriptions ${routes.map((r) => r.filter).join(', ')}: ${errorMessage(error)}`, { url: safeUrl, clientId }, { cause: error });
    }
    const refused = granted.filter((g) => g.qos >= 0x80);
    if (refused.length > 0) {
      created.end(true);
      if (client === created) client = undefined;
      throw new GpError(
        'GP_MQTT_FAILED',
        `MQTT broker ${safeUrl} refused the subscription to ${refused.map((g) => `"${g.topic}" (reason code ${g.qos})`).join(', ')}`,
        { url: safeUrl, clientId, topics: refused.map((g) => g.topic) },
      );
    }
    stats.subscriptions = granted.map((g) => ({ topic: g.topic, grantedQos: g.qos }));
  };

  return {
    kind: 'mqtt',
    ready(): Promise<void> {
      if (closing) return Promise.reject(closedError(safeUrl));
      readyPromise ??= connect().catch((error: unknown) => {
        readyPromise = undefined;
        throw error;
      });
      return readyPromise;
    },
    close(): Promise<void> {
      closePromise ??= (async () => {
        closing = true;
        abortConnect?.(closedError(safeUrl));
        await Promise.race([Promise.allSettled([...inFlight]), delay(closeTimeoutMs)]);
        const current = client;
        client = undefined;
        if (current !== undefined) await endClient(current, closeTimeoutMs);
        stats.connected = false;
      })();
      return closePromise;
    },
    stats(): MqttSourceStats {
      return { ...stats, subscriptions: stats.subscriptions.map((s) => ({ ...s })) };
    },
  };
}

/**
 * Parses one message payload: a JSON value (an array gives its elements), or NDJSON (one value per
 * line). A payload whose first line is not JSON is one broken document. Exported for tests.
 */
export function parsePayload(payload: Uint8Array, maxPayloadBytes: number = MQTT_DEFAULTS.maxPayloadBytes): { items: unknown[]; rejected: MqttRejection[] } {
  if (payload.byteLength > maxPayloadBytes) {
    return { items: [], rejected: [{ index: 0, reason: `payload of ${payload.byteLength} bytes is over the limit of ${maxPayloadBytes} bytes` }] };
  }
  let text: string;
  try {
    text = UTF8.decode(payload);
  } catch {
    return { items: [], rejected: [{ index: 0, reason: 'payload is not UTF-8 text: expected JSON or NDJSON' }] };
  }
  if (text.trim() === '') return { items: [], rejected: [] };
  try {
    const value: unknown = JSON.parse(text);
    return { items: Array.isArray(value) ? (value as unknown[]) : [value], rejected: [] };
  } catch (error) {
    const lines = text.split('\n');
    const firstLine = lines.findIndex((line) => line.trim() !== '');
    if (!parses(lines[firstLine] ?? '')) {
      return { items: [], rejected: [{ index: 0, reason: `expected JSON or NDJSON, got ${snippet(text)} (${errorMessage(error)})` }] };
    }
    const items: unknown[] = [];
    const rejected: MqttRejection[] = [];
    let index = 0;
    lines.forEach((line, lineIndex) => {
      if (line.trim() === '') return;
      try {
        items.push(JSON.parse(line));
      } catch (lineError) {
        rejected.push({ index, line: lineIndex + 1, reason: `line ${lineIndex + 1}: expected JSON, got ${snippet(line)} (${errorMessage(lineError)})` });
      }
      index += 1;
    });
    return { items, rejected };
  }
}

/** Whether an MQTT topic matches a filter (split into levels), per MQTT 5 §4.7. Exported for tests. */
export function topicMatches(filterLevels: readonly string[], topic: string): boolean {
  const levels = topic.split('/');
  // Wildcards at the first level do not match topics starting with "$" (§4.7.2).
  if (topic.startsWith('$') && (filterLevels[0] === '+' || filterLevels[0] === '#')) return false;
  for (let i = 0; i < filterLevels.length; i++) {
    const filterLevel = filterLevels[i];
    if (filterLevel === '#') return true;
    const level = levels[i];
    if (level === undefined) return false;
    if (filterLevel !== '+' && filterLevel !== level) return false;
  }
  return levels.length === filterLevels.length;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function compileRoute(route: MqttTopicRoute, index: number): CompiledRoute {
  const path = `/mqtt/topics/${index}`;
  const invalid = (message: string): GpError => new GpError('GP_CONFIG_INVALID', `${path}: ${message}`, { path });
  const filter = route.topic;
  let matched = filter;
  if (filter.startsWith('$share/')) {
    // Shared subscription: $share/<group>/<filter>; messages carry the plain topic.
    const rest = filter.slice('$share/'.length);
    const slash = rest.indexOf('/');
    const group = slash < 0 ? rest : rest.slice(0, slash);
    if (slash < 0 || group === '' || /[+#]/.test(group)) {
      throw invalid(`expected a shared subscription like "$share/<group>/<topic filter>", got "${filter}"`);
    }
    matched = rest.slice(slash + 1);
  }
  const levels = matched.split('/');
  if (matched === '' || filter.includes('\u0000')) throw invalid(`expected a topic filter like "gridpulse/+/readings", got "${filter}"`);
  levels.forEach((level, i) => {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      throw invalid(`expected "#" only as the whole last level of the topic filter, got "${filter}"`);
    }
    if (level.includes('+') && level !== '+') throw invalid(`expected "+" only as a whole level of the topic filter, got "${filter}"`);
  });
  const keyLevel = route.keyLevel;
  if (keyLevel !== undefined) {
    const reachesKey = keyLevel < levels.length && levels[keyLevel] !== '#' ? true : levels[levels.length - 1] === '#';
    if (!Number.isInteger(keyLevel) || keyLevel < 0 || !reachesKey) {
      throw invalid(`expected keyLevel to be a level of the topic filter "${matched}" (0 to ${levels.length - 1}), got ${keyLevel}`);
    }
  }
  return { filter, levels, stream: route.stream, keyLevel };
}

function keyOf(route: CompiledRoute, topic: string): string | undefined {
  if (route.keyLevel === undefined) return undefined;
  const key = topic.split('/')[route.keyLevel];
  return key === undefined || key === '' ? undefined : key;
}

type MqttModule = typeof import('mqtt');

async function loadMqtt(): Promise<MqttModule> {
  try {
    return await import('mqtt');
  } catch (error) {
    throw new GpError('GP_MQTT_FAILED', `MQTT ingest needs the "mqtt" package, which cannot be loaded (npm install mqtt): ${errorMessage(error)}`, {}, { cause: error });
  }
}

async function endClient(client: MqttClient, timeoutMs: number): Promise<void> {
  // A graceful DISCONNECT keeps the session on the broker (its expiry was set at CONNECT).
  const ended = client.connected ? client.endAsync(false) : client.endAsync(true);
  const outcome = await Promise.race([ended.then(() => 'ended' as const, () => 'failed' as const), delay(timeoutMs).then(() => 'timeout' as const)]);
  if (outcome !== 'ended') client.end(true);
}

function settleWithin(promise: Promise<void>, timeoutMs: number, message: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(message)), timeoutMs);
    // A handler that never settles must not keep the process alive.
    timer.unref();
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => {
    setTimeout(resolve, ms).unref();
  });
}

function closedError(url: string): GpError {
  return new GpError('GP_MQTT_FAILED', `MQTT source for ${url} is closed`, { url });
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function snippet(text: string): string {
  const trimmed = text.trim();
  return JSON.stringify(trimmed.length > 60 ? `${trimmed.slice(0, 60)}…` : trimmed);
}

function errorMessage(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(errorMessage).join('; ');
  return error instanceof Error ? error.message || error.constructor.name : String(error);
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
