import { hostname } from 'node:os';
import type { IClientOptions, MqttClient } from 'mqtt';
import { GpError } from '../../model/index.js';
import type { AlertEvent } from '../../model/index.js';
import { DEFAULT_RETRY_POLICY, errorMessage, type AttemptContext, type Channel, type DeliveryResult, type Notification, type RetryPolicy, type TemplateName } from './channel.js';
import type { IncidentNotice } from './incident-grouper.js';

export interface MqttChannelOptions {
  readonly name: string;
  /** Broker URL, e.g. `mqtt://127.0.0.1:1883`; may hold a password, which never appears in messages. */
  readonly url: string;
  /**
   * Topic to publish to; `{stream}`, `{key}`, `{site}`, `{type}`, `{severity}`, `{kind}` and
   * `{alertId}` are replaced per notification (`/`, `+`, `#` in values become `_`; a missing site is `_`).
   */
  readonly topic: string;
  /** 1 (default): at least once, acknowledged by PUBACK; 2: PUBCOMP. */
  readonly qos?: 1 | 2;
  /** Default `gridpulse-alerts-<host name>-<channel name>`. */
  readonly clientId?: string | undefined;
  /** How long one publish may wait for the broker's acknowledgement. Default 10 s. */
  readonly timeoutMs?: number;
  /** How long `ready()` waits for the first connection. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Delay between reconnect attempts after the broker went away. Default 1 s. */
  readonly reconnectMs?: number;
  readonly retry?: RetryPolicy;
  readonly template?: TemplateName;
}

type MqttModule = typeof import('mqtt');

/**
 * Publishes each notification (the rendered JSON) to an MQTT topic with QoS 1 (or 2), as MQTT 5
 * with content type `application/json` and the transition id in the user property
 * `gridpulse-id`, so that subscribers can drop a repeat. An attempt is delivered once the broker
 * acknowledged it; while the broker is unreachable attempts return `retry` without queueing
 * anything in the client. The `mqtt` package is loaded on `ready()` (or the first delivery).
 *
 * @example
 * const channel = createMqttChannel({ name: 'plant', url: 'mqtt://127.0.0.1:1883', topic: 'gridpulse/alerts/{site}/{type}' });
 * await channel.ready();
 */
export function createMqttChannel(options: MqttChannelOptions): Channel {
  const safeUrl = redactUrl(options.url);
  if (!/^(mqtts?|wss?|tcp):\/\/[^/]/.test(options.url)) {
    throw new GpError('GP_CONFIG_INVALID', `channels.${options.name}.url: expected a broker URL like "mqtt://127.0.0.1:1883", got ${JSON.stringify(safeUrl)}`, { field: `channels.${options.name}.url` });
  }
  if (options.topic === '' || /[+#]/.test(options.topic) || options.topic.includes('\u0000')) {
    throw new GpError('GP_CONFIG_INVALID', `channels.${options.name}.topic: expected a topic without the wildcards + and #, got ${JSON.stringify(options.topic)}`, { field: `channels.${options.name}.topic` });
  }
  const qos = options.qos ?? 1;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const clientId = options.clientId ?? `gridpulse-alerts-${hostname()}-${options.name}`;
  let client: MqttClient | undefined;
  let connecting: Promise<MqttClient> | undefined;
  let closed = false;

  async function connect(): Promise<MqttClient> {
    const mqtt = await loadMqtt();
    if (closed) throw new GpError('GP_MQTT_FAILED', `MQTT channel ${options.name} (${safeUrl}) is closed`, { url: safeUrl });
    const clientOptions: IClientOptions = {
      clientId,
      clean: true,
      protocolVersion: 5,
      connectTimeout: connectTimeoutMs,
      reconnectPeriod: options.reconnectMs ?? 1000,
      // Offline publishes would be sent later behind the worker's back; the worker retries instead.
      queueQoSZero: false,
    };
    const created = mqtt.connect(options.url, clientOptions);
    // Errors are seen through `connected` and each publish; an unhandled 'error' event would crash the process.
    created.on('error', () => undefined);
    client = created;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        created.off('connect', onConnect);
        reject(new GpError('GP_MQTT_FAILED', `MQTT broker ${safeUrl} not reachable within ${connectTimeoutMs} ms (channel ${options.name}); it keeps trying in the background`, { url: safeUrl }));
      }, connectTimeoutMs);
      timer.unref();
      const onConnect = (): void => {
        clearTimeout(timer);
        resolve();
      };
      created.once('connect', onConnect);
    });
    return created;
  }

  function ensureClient(): Promise<MqttClient> {
    if (client !== undefined) return Promise.resolve(client);
    connecting ??= connect();
    return connecting;
  }

  async function deliver(notification: Notification, _context: AttemptContext): Promise<DeliveryResult> {
    if (closed) return { outcome: 'retry', reason: `MQTT channel ${options.name} is closed` };
    let current: MqttClient;
    try {
      current = await ensureClient();
    } catch (error) {
      return { outcome: 'retry', reason: `MQTT ${safeUrl}: ${errorMessage(error)}` };
    }
    if (!current.connected) return { outcome: 'retry', reason: `MQTT broker ${safeUrl} is not connected` };
    const topic = topicFor(options.topic, notification.event, notification.incident);
    const published = current.publishAsync(topic, notification.body, {
      qos,
      retain: false,
      properties: { contentType: 'application/json', userProperties: { 'gridpulse-id': notification.id } },
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      timer.unref();
    });
    try {
      const outcome = await Promise.race([published.then(() => 'acknowledged' as const), timeout]);
      if (outcome === 'timeout') return { outcome: 'retry', reason: `MQTT broker ${safeUrl} did not acknowledge ${topic} within ${timeoutMs} ms` };
      return { outcome: 'delivered' };
    } catch (error) {
      return { outcome: 'retry', reason: `MQTT publish to ${topic} on ${safeUrl}: ${errorMessage(error)}` };
    } finally {
      clearTimeout(timer);
      // A publish given up on may still fail later; that must not become an unhandled rejection.
      published.catch(() => undefined);
    }
  }

  return {
    name: options.name,
    kind: 'mqtt',
    defaultTemplate: options.template ?? 'generic',
    retry: options.retry ?? DEFAULT_RETRY_POLICY,
    target: `${safeUrl} ${options.topic}`,
    async ready() {
      await ensureClient();
    },
    deliver,
    async close() {
      if (closed) return;
      closed = true;
      const current = client;
      client = undefined;
      if (current !== undefined) await current.endAsync(!current.connected).catch(() => current.end(true));
    },
  };
}

/**
 * The topic of one notification: the channel's topic with the alert's fields filled in. For an
 * incident notice `{kind}` is `incident.opened` (…updated, …resolved), `{alertId}` the incident id
 * and `{key}` the number of devices; the other fields are those of its first linked alert.
 *
 * @example
 * topicFor('gridpulse/alerts/{site}/{type}', event); // 'gridpulse/alerts/s-1/spike'
 */
export function topicFor(template: string, event: AlertEvent, incident?: IncidentNotice): string {
  const values: Record<string, string | undefined> = {
    stream: event.alert.stream,
    key: incident === undefined ? event.alert.key : `${incident.incident.deviceCount}-devices`,
    site: incident === undefined ? event.alert.site : (incident.incident.site ?? undefined),
    type: event.alert.type,
    severity: incident === undefined ? event.transition.severity : incident.incident.severity,
    kind: incident === undefined ? event.transition.kind : incident.kind,
    alertId: incident === undefined ? event.alert.id : incident.incident.id,
  };
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    if (!Object.hasOwn(values, name)) return whole;
    const value = values[name];
    return value === undefined || value === '' ? '_' : value.replace(/[/+#]/g, '_').replaceAll('\u0000', '_');
  });
}

async function loadMqtt(): Promise<MqttModule> {
  try {
    return await import('mqtt');
  } catch (error) {
    throw new GpError('GP_MQTT_FAILED', `MQTT alert channels need the "mqtt" package, which cannot be loaded (npm install mqtt): ${errorMessage(error)}`, {}, { cause: error });
  }
}

function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}
