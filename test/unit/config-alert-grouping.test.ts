// alerts.delivery.grouping (site incidents in delivery) and kafka channels in the config: the
// defaults, and each mistake reported at its JSON pointer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/index.js';

function messageAt(input: unknown, path: string): string {
  const { issues } = parseConfig(input);
  const found = issues.find((issue) => issue.path === path);
  assert.ok(found !== undefined, `no issue at ${path}; issues: ${JSON.stringify(issues)}`);
  return found.message;
}

void test('grouping is on with a 30 s group wait and a 5 min interval, follows alerts.incidents, and can be turned off', () => {
  const { config, issues } = parseConfig({ alerts: { incidents: { minDevices: 8, types: ['silence'] }, delivery: { grouping: { groupWait: '10s' } } } });
  assert.deepEqual(issues, []);
  assert.deepEqual(config?.alerts.delivery.grouping, { enabled: true, groupWaitMs: 10_000, groupIntervalMs: 300_000, policy: { minDevices: 8, minShare: 0.5, windowMs: 120_000, types: ['silence'] } });
  assert.equal(parseConfig({ alerts: { delivery: { grouping: { enabled: false } } } }).config?.alerts.delivery.grouping.enabled, false);
});

void test('grouping mistakes are reported at their paths', () => {
  assert.match(messageAt({ alerts: { delivery: { grouping: { groupWait: 'soon' } } } }, '/alerts/delivery/grouping/groupWait'), /^expected a duration like "10m".*, got "soon"$/);
  assert.equal(messageAt({ alerts: { delivery: { grouping: { groupInterval: '0s' } } } }, '/alerts/delivery/grouping/groupInterval'), 'expected a duration greater than zero, got "0s"');
  assert.match(messageAt({ alerts: { delivery: { grouping: { enabled: 'yes' } } } }, '/alerts/delivery/grouping/enabled'), /expected true or false/);
  assert.match(messageAt({ alerts: { delivery: { grouping: { groupBy: ['site'] } } } }, '/alerts/delivery/grouping/groupBy'), /groupBy/);
});

void test('a kafka channel takes a kafka:// URL and a topic; mistakes are reported at their paths', () => {
  const { config, issues } = parseConfig({
    alerts: { delivery: { channels: { bus: { type: 'kafka', url: 'kafka://10.0.0.1:9092,10.0.0.2:9092', topic: 'gridpulse-alert-notifications' } }, routes: [{ channels: ['bus'] }] } },
  });
  assert.deepEqual(issues, []);
  assert.deepEqual(config?.alerts.delivery.channels, [
    {
      type: 'kafka',
      name: 'bus',
      url: 'kafka://10.0.0.1:9092,10.0.0.2:9092',
      topic: 'gridpulse-alert-notifications',
      clientId: undefined,
      timeoutMs: 10_000,
      retry: { attempts: 8, baseDelayMs: 1000, maxDelayMs: 300_000 },
      template: 'generic',
    },
  ]);
  const at = (channel: Record<string, unknown>, key: string) => messageAt({ alerts: { delivery: { channels: { bus: { type: 'kafka', ...channel } } } } }, `/alerts/delivery/channels/bus/${key}`);
  assert.equal(at({ url: 'http://broker:9092', topic: 't' }, 'url'), 'expected a Kafka URL like "kafka://127.0.0.1:9092,127.0.0.1:9093", got "http://broker:9092"');
  assert.match(at({ url: 'kafka://broker:9092' }, 'topic'), /got nothing \(this key is required for kafka channels\)$/);
  assert.equal(at({ url: 'kafka://broker:9092', topic: 'alerts/{site}' }, 'topic'), 'expected a Kafka topic name (1 to 249 letters, digits and ._-), got "alerts/{site}"');
  assert.equal(at({ url: 'kafka://broker:9092', topic: 't', qos: 1 }, 'qos'), 'expected no qos for a kafka channel (qos belongs to mqtt channels), got 1');
  assert.equal(at({ url: 'kafka://broker:9092', topic: 't', secret: 'whsec_x' }, 'secret'), 'expected no secret for a kafka channel (secret belongs to webhook channels), got a value');
});
