export * from './log.js';
export { createFileLog, type FileLogOptions, type FileLogRetention, type FsyncPolicy } from './file-log.js';
export { partitionOfKey } from './partitioner.js';
export { createKafkaLog, parseKafkaUrl, rawTopicOf, DEFAULT_RAW_TOPICS, type KafkaLog, type KafkaLogOptions } from './kafka-log.js';
export { createKafkajsClient, type KafkaClient, type KafkaClientOptions } from './kafka-client.js';
export {
  createKafkaSink,
  aggregateMessage,
  alertMessage,
  opsMessage,
  auditMessage,
  DEFAULT_OUTPUT_TOPICS,
  OUTPUT_SCHEMAS,
  type KafkaSink,
  type KafkaSinkOptions,
  type KafkaOutputTopics,
  type OutputMessage,
} from './kafka-sink.js';
