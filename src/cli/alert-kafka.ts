// The Kafka client maker of `kafka` alert channels: the log module's kafkajs client (idempotent
// producer, acks=all) and Kafka's murmur2 partitioning. It lives here because alerts may not import
// the log module (DESIGN.md: arrows point one way); the CLI wires the two.
import type { KafkaConnector } from '../alerts/index.js';
import { createKafkajsClient, parseKafkaUrl, partitionOfKey } from '../log/index.js';

/**
 * Gives `kafka` alert channels their clients.
 *
 * @example
 * createAlertDelivery(config.alerts.delivery, { dataDir, kafka: alertKafkaConnector });
 */
export const alertKafkaConnector: KafkaConnector = {
  client: (url, { clientId, requestTimeoutMs }) =>
    createKafkajsClient({ brokers: parseKafkaUrl(url, 'alerts.delivery kafka channel url').brokers, clientId, connectionTimeoutMs: 3000, requestTimeoutMs, retries: 2 }),
  partitionOf: partitionOfKey,
};
