import { join } from 'node:path';
import type { PlatformConfig } from '../../config/index.js';
import { GpError } from '../../model/index.js';
import type { Channel } from './channel.js';
import { createFileDeadLetterStore, createMemoryDeadLetterStore } from './dead-letters.js';
import { createDeliveryWorker, type DeliveryReport, type DeliveryWorker } from './delivery-worker.js';
import { createKafkaChannel, type KafkaConnector } from './kafka-channel.js';
import { createMqttChannel } from './mqtt-channel.js';
import { createAlertRouter } from './router.js';
import { createTargetPolicy, type HostResolver } from './target-policy.js';
import { createWebhookChannel } from './webhook-channel.js';

/** The resolved `alerts.delivery` section of the config. */
export type AlertDeliverySettings = PlatformConfig['alerts']['delivery'];

export interface AlertDeliveryOptions {
  /** The config's `dataDir`: with `deadLetters: file` the list is kept in `<dataDir>/alerts/dead-letters.jsonl`. */
  readonly dataDir: string;
  readonly onReport?: (report: DeliveryReport) => void;
  /** Wall clock, epoch ms (webhook timestamps, Retry-After dates, dead-letter times). */
  readonly clock?: () => number;
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly random?: () => number;
  /** Host name resolver of the webhook allow-list (default: the system resolver). */
  readonly resolve?: HostResolver;
  /** The Kafka client maker of `kafka` channels (src/cli/alert-kafka.ts gives the log module's); required when one is configured. */
  readonly kafka?: KafkaConnector;
}

/** Where the file dead-letter store keeps its list under a data directory. */
export function deadLetterPath(dataDir: string): string {
  return join(dataDir, 'alerts', 'dead-letters.jsonl');
}

/** Where delivery keeps its incident grouping state (held alerts, open incidents) under a data directory. */
export function groupingStatePath(dataDir: string): string {
  return join(dataDir, 'alerts', 'incident-groups.json');
}

/**
 * The delivery worker described by `alerts.delivery`: its channels, routes, allow-list and
 * dead-letter store, and the grouping of site incidents (`grouping`, state in
 * `<dataDir>/alerts/incident-groups.json`). Throws GP_CONFIG_INVALID when a webhook URL is refused
 * by the allow-list. With no channels configured it accepts every transition and sends nothing.
 *
 * @example
 * const delivery = createAlertDelivery(config.alerts.delivery, { dataDir: config.dataDir, onReport: (r) => log(r) });
 * await delivery.ready();
 * // in the alert manager's emit: delivery.submit(event)
 */
export function createAlertDelivery(settings: AlertDeliverySettings, options: AlertDeliveryOptions): DeliveryWorker {
  const policy = createTargetPolicy({
    allowedHosts: settings.allow.hosts,
    allowedCidrs: settings.allow.cidrs,
    ...(options.resolve === undefined ? {} : { resolve: options.resolve }),
  });
  const clock = options.clock === undefined ? {} : { clock: options.clock };
  const channels: Channel[] = settings.channels.map((channel) => {
    if (channel.type === 'webhook') {
      return createWebhookChannel({ name: channel.name, url: channel.url, secrets: channel.secrets, timeoutMs: channel.timeoutMs, retry: channel.retry, template: channel.template, policy, ...clock });
    }
    if (channel.type === 'mqtt') {
      return createMqttChannel({ name: channel.name, url: channel.url, topic: channel.topic, qos: channel.qos, clientId: channel.clientId, timeoutMs: channel.timeoutMs, retry: channel.retry, template: channel.template });
    }
    if (options.kafka === undefined) {
      throw new GpError('GP_CONFIG_INVALID', `channels.${channel.name}: a kafka channel needs a Kafka client, and this program gave none (it runs in gridpulse up)`, { field: `channels.${channel.name}` });
    }
    return createKafkaChannel({ name: channel.name, url: channel.url, topic: channel.topic, connector: options.kafka, clientId: channel.clientId, timeoutMs: channel.timeoutMs, retry: channel.retry, template: channel.template, ...clock });
  });
  const deadLetters = settings.deadLetters === 'file' ? createFileDeadLetterStore({ path: deadLetterPath(options.dataDir) }) : createMemoryDeadLetterStore();
  // A settings object made by hand (not by the config loader) may predate grouping: then it is off.
  const grouping = settings.grouping as AlertDeliverySettings['grouping'] | undefined;
  return createDeliveryWorker({
    channels,
    router: createAlertRouter(settings.routes),
    deadLetters,
    queueCapacity: settings.queueCapacity,
    ...clock,
    ...(options.sleep === undefined ? {} : { sleep: options.sleep }),
    ...(options.random === undefined ? {} : { random: options.random }),
    ...(options.onReport === undefined ? {} : { onReport: options.onReport }),
    ...(grouping?.enabled === true
      ? {
          grouping: {
            policy: grouping.policy,
            groupWaitMs: grouping.groupWaitMs,
            groupIntervalMs: grouping.groupIntervalMs,
            statePath: groupingStatePath(options.dataDir),
          },
        }
      : {}),
  });
}
