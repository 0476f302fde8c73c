import { join } from 'node:path';
import type { PlatformConfig } from '../../config/index.js';
import type { Channel } from './channel.js';
import { createFileDeadLetterStore, createMemoryDeadLetterStore } from './dead-letters.js';
import { createDeliveryWorker, type DeliveryReport, type DeliveryWorker } from './delivery-worker.js';
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
}

/** Where the file dead-letter store keeps its list under a data directory. */
export function deadLetterPath(dataDir: string): string {
  return join(dataDir, 'alerts', 'dead-letters.jsonl');
}

/**
 * The delivery worker described by `alerts.delivery`: its channels, routes, allow-list and
 * dead-letter store. Throws GP_CONFIG_INVALID when a webhook URL is refused by the allow-list.
 * With no channels configured it accepts every transition and sends nothing.
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
  const channels: Channel[] = settings.channels.map((channel) =>
    channel.type === 'webhook'
      ? createWebhookChannel({ name: channel.name, url: channel.url, secrets: channel.secrets, timeoutMs: channel.timeoutMs, retry: channel.retry, template: channel.template, policy, ...clock })
      : createMqttChannel({ name: channel.name, url: channel.url, topic: channel.topic, qos: channel.qos, clientId: channel.clientId, timeoutMs: channel.timeoutMs, retry: channel.retry, template: channel.template }),
  );
  const deadLetters = settings.deadLetters === 'file' ? createFileDeadLetterStore({ path: deadLetterPath(options.dataDir) }) : createMemoryDeadLetterStore();
  return createDeliveryWorker({
    channels,
    router: createAlertRouter(settings.routes),
    deadLetters,
    queueCapacity: settings.queueCapacity,
    ...clock,
    ...(options.sleep === undefined ? {} : { sleep: options.sleep }),
    ...(options.random === undefined ? {} : { random: options.random }),
    ...(options.onReport === undefined ? {} : { onReport: options.onReport }),
  });
}
