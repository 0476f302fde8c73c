// The Kafka log's configuration without a broker: kafka:// URLs, options, the raw topics, and the
// agreement of partitionOfKey with the partitioner other Kafka producers use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { GpError } from '../../src/model/index.js';
import { createKafkaLog, parseKafkaUrl, partitionOfKey, rawTopicOf, type KafkaLogOptions } from '../../src/log/index.js';

function configError(pattern: RegExp): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof GpError, String(error));
    assert.equal(error.code, 'GP_CONFIG_INVALID');
    assert.match(error.message, pattern);
    return true;
  };
}

test('kafka:// URLs give their brokers, with port 9092 when left out', () => {
  assert.deepEqual(parseKafkaUrl('kafka://127.0.0.1:9092'), { brokers: ['127.0.0.1:9092'] });
  assert.deepEqual(parseKafkaUrl('kafka://k1.example.com:9093,k2.example.com, [::1]:19092/'), {
    brokers: ['k1.example.com:9093', 'k2.example.com:9092', '[::1]:19092'],
  });
  assert.deepEqual(parseKafkaUrl('KAFKA://broker'), { brokers: ['broker:9092'] });
});

test('a bad kafka:// URL is a config error saying what was expected and what came', () => {
  assert.throws(() => parseKafkaUrl('http://broker:9092'), configError(/^log: expected kafka:\/\/host:port\[,host:port\.\.\.\], got a http: URL "http:\/\/broker:9092"$/));
  assert.throws(() => parseKafkaUrl('broker:9092'), configError(/got a broker: URL/));
  assert.throws(() => parseKafkaUrl('127.0.0.1'), configError(/\(no scheme\)/));
  assert.throws(() => parseKafkaUrl('kafka://'), configError(/no broker/));
  assert.throws(() => parseKafkaUrl('kafka://a:9092,,b:9092'), configError(/^log broker 2: expected host:port/));
  assert.throws(() => parseKafkaUrl('kafka://a:99999'), configError(/^log broker 1: expected a port 1\.\.65535, got 99999/));
  assert.throws(() => parseKafkaUrl('kafka://a:9092/topic'), configError(/nothing may follow the brokers \(found "\/topic"\)/));
  assert.throws(() => parseKafkaUrl('kafka://a:9092?acks=1'), configError(/found "\?acks=1"/));
});

test('a password in a kafka:// URL is refused and never repeated in the message', () => {
  assert.throws(
    () => parseKafkaUrl('kafka://alice:s3cret@broker:9092'),
    (error: unknown) => {
      assert.ok(error instanceof GpError);
      assert.equal(error.code, 'GP_CONFIG_INVALID');
      assert.match(error.message, /credentials in the URL are not supported/);
      assert.ok(!error.message.includes('s3cret') && !error.message.includes('alice'), error.message);
      assert.ok(!JSON.stringify(error).includes('s3cret'));
      return true;
    },
  );
});

test('Kafka log options are checked when the log is created', () => {
  const good: KafkaLogOptions = { brokers: 'kafka://127.0.0.1:9092', topic: 'power-usage-raw' };
  assert.throws(() => createKafkaLog({ ...good, topic: 'bad topic' }), configError(/^log topic: expected a Kafka topic name .*got "bad topic"$/));
  assert.throws(() => createKafkaLog({ ...good, topic: 'x'.repeat(250) }), configError(/^log topic/));
  assert.throws(() => createKafkaLog({ ...good, partitions: 0 }), configError(/^log partitions: expected an integer 1\.\.10000, got 0$/));
  assert.throws(() => createKafkaLog({ ...good, brokers: [] }), configError(/^log brokers: expected a kafka:\/\/host:port/));
  assert.throws(() => createKafkaLog({ ...good, brokers: ['a:1', 'b:x'] }), configError(/^log brokers\[1\]: expected host:port/));
  assert.throws(() => createKafkaLog({ ...good, brokers: 'kafka://a:1/x' }), configError(/^log brokers: expected kafka:/));
  assert.throws(() => createKafkaLog({ ...good, consumers: ['engine', 'no spaces'] }), (error: unknown) => error instanceof GpError && /consumers\[1\]/.test(error.message));
  assert.throws(() => createKafkaLog({ ...good, maxBatchBytes: 10 }), configError(/^log maxBatchBytes: expected an integer >= 1024, got 10$/));
  assert.throws(() => createKafkaLog({ ...good, fsync: 'batch' } as unknown as KafkaLogOptions), configError(/^log fsync: expected one of the options .*unknown option "fsync"$/));
  const log = createKafkaLog({ ...good, brokers: '10.0.0.1:9092, 10.0.0.2' });
  assert.deepEqual(log.brokers, ['10.0.0.1:9092', '10.0.0.2:9092']);
  assert.equal(log.topic, 'power-usage-raw');
  assert.equal(log.kind, 'kafka');
});

test('each stream has its raw topic: power-usage-raw, sensor-raw-data, else <stream>-raw or the configured one', () => {
  assert.equal(rawTopicOf('power'), 'power-usage-raw');
  assert.equal(rawTopicOf('machines'), 'sensor-raw-data');
  assert.equal(rawTopicOf('hvac'), 'hvac-raw');
  assert.equal(rawTopicOf('power', { power: 'meters' }), 'meters');
});

test('kafkajs’s default partitioner (Java-compatible murmur2) picks partitionOfKey’s partition for every key', () => {
  const require = createRequire(import.meta.url);
  const { Partitioners } = require('kafkajs') as typeof import('kafkajs');
  const partitioner = Partitioners.DefaultPartitioner();
  const keys = [
    '',
    'a',
    'ab',
    'abc',
    'abcd',
    'm-1',
    'machine-001',
    'zähler-ü',
    '電力メーター',
    '🙂🙂',
    ...Array.from({ length: 10_000 }, (_, index) => `m-${index}-${(index * 7919) % 10007}`),
  ];
  for (const count of [1, 2, 3, 4, 12, 64]) {
    const partitionMetadata = Array.from({ length: count }, (_, partitionId) => ({ partitionId, leader: 1, partitionErrorCode: 0, replicas: [1], isr: [1] }));
    for (const key of keys) {
      const chosen = partitioner({ topic: 't', partitionMetadata, message: { key, value: 'v' } });
      assert.equal(chosen, partitionOfKey(key, count), `key ${JSON.stringify(key)} with ${count} partitions`);
    }
  }
});
