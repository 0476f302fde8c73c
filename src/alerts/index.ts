/**
 * Alert lifecycle: findings in, alert events out (open → update/escalate → resolve → reopen),
 * with deterministic ids. Delivery channels live beside it (src/alerts/channels) and take `AlertEvent`s.
 */
export { createAlertManager } from './alert-manager.js';
export type { AlertManager, AlertManagerOptions } from './alert-manager.js';
export { alertId, transitionId } from './alert-ids.js';
// Grouping of device alerts into site incidents with a root-cause hint.
export { groupIncidents, DEFAULT_INCIDENT_POLICY } from './incidents.js';
export type { SiteIncident, RootCauseHint, IncidentPolicy, GroupIncidentsOptions } from './incidents.js';
// Delivery of alert transitions: channels (webhook, MQTT, Kafka), routes, retries, dead letters.
export { createDeliveryWorker } from './channels/delivery-worker.js';
export type { DeliveryWorker, DeliveryWorkerOptions, DeliveryGroupingOptions, DeliveryReport, ChannelMetrics, SubmitResult, RedeliveryResult } from './channels/delivery-worker.js';
// Site incidents in delivery: alerts of the incident types held for a group wait, one notification per incident.
export { createIncidentGrouper } from './channels/incident-grouper.js';
export type { IncidentGrouper, IncidentGrouperOptions, IncidentNotice, IncidentNoticeKind, IncidentSummary, GroupedOutput, GroupingState, GroupingStats } from './channels/incident-grouper.js';
export { DEFAULT_RETRY_POLICY } from './channels/channel.js';
export type { Channel, Notification, AttemptContext, DeliveryResult, RetryPolicy, TemplateName } from './channels/channel.js';
export { createAlertRouter } from './channels/router.js';
export type { AlertRouter, AlertRoute, RouteTarget } from './channels/router.js';
export { renderNotification, genericBody, slackBody, renderIncidentNotice, genericIncidentBody, slackIncidentBody } from './channels/templates.js';
export type { GenericAlertBody, SlackAlertBody, GenericIncidentBody } from './channels/templates.js';
export { createWebhookChannel } from './channels/webhook-channel.js';
export type { WebhookChannelOptions } from './channels/webhook-channel.js';
export { signWebhook, webhookSecretKey } from './channels/webhook-signature.js';
export type { WebhookSignatureHeaders } from './channels/webhook-signature.js';
export { createMqttChannel, topicFor } from './channels/mqtt-channel.js';
export type { MqttChannelOptions } from './channels/mqtt-channel.js';
export { createKafkaChannel } from './channels/kafka-channel.js';
export type { KafkaChannelOptions, KafkaConnector, KafkaProducerClient, KafkaProduceRecord } from './channels/kafka-channel.js';
export { createTargetPolicy } from './channels/target-policy.js';
export type { TargetPolicy, TargetPolicyOptions, TargetCheck, HostResolver, ResolvedAddress } from './channels/target-policy.js';
export { retryDelay, parseRetryAfter } from './channels/retry.js';
export type { RetryDecision } from './channels/retry.js';
export { createMemoryDeadLetterStore, createFileDeadLetterStore, deadLetterId } from './channels/dead-letters.js';
export type { DeadLetter, DeadLetterFilter, DeadLetterStore, FileDeadLetterStoreOptions } from './channels/dead-letters.js';
export { createAlertDelivery, deadLetterPath, groupingStatePath } from './channels/from-config.js';
export type { AlertDeliveryOptions, AlertDeliverySettings } from './channels/from-config.js';
