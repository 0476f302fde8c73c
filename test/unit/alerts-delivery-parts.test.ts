// The pieces of alert delivery that need no network: the Standard Webhooks signature, routes,
// templates, the retry schedule, Retry-After and MQTT topics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createAlertRouter,
  createDeliveryWorker,
  parseRetryAfter,
  renderNotification,
  retryDelay,
  signWebhook,
  topicFor,
  webhookSecretKey,
  type Channel,
  type Notification,
} from '../../src/alerts/index.js';
import type { AlertEvent } from '../../src/model/index.js';
import { GpError } from '../../src/model/index.js';
import { alertEvents } from './alerts-delivery-harness.js';

test('signWebhook reproduces the Standard Webhooks published test vector', () => {
  const key = webhookSecretKey('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
  assert.deepEqual(signWebhook('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}', [key]), {
    'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    'webhook-timestamp': '1614265330',
    'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  });
  // The spec forbids "." in the id: it would make "id.timestamp.body" ambiguous.
  assert.throws(() => signWebhook('a.b', 1, '{}', [key]), (error: unknown) => error instanceof GpError && error.code === 'GP_INPUT_INVALID');
});

/** An event like `base` with other alert fields and transition severity/kind. */
function variant(base: AlertEvent, alert: Partial<AlertEvent['alert']>, transition: Partial<AlertEvent['transition']> = {}): AlertEvent {
  return { alert: { ...base.alert, ...alert }, transition: { ...base.transition, ...transition } };
}

test('routes match by stream, type, site, severity (list or minimum) and kind; each channel gets a transition once', () => {
  const [base] = alertEvents(1);
  assert.ok(base);
  const router = createAlertRouter([
    { name: 'critical-power', streams: ['power'], minSeverity: 'critical', channels: ['pager', 'slack'], template: 'slack' },
    { name: 'site-1', sites: ['s-1'], kinds: ['open', 'resolve'], channels: ['slack', 'site-1-topic'] },
    { name: 'machines-torque', streams: ['machines'], types: ['torque_high'], severities: ['warning'], channels: ['maintenance'] },
  ]);
  const channels = (event: AlertEvent) => router.targets(event).map((target) => `${target.channel}/${target.template ?? '-'}/${target.route}`);

  assert.deepEqual(channels(variant(base, { site: 's-1' }, { severity: 'critical', kind: 'open' })), ['pager/slack/critical-power', 'slack/slack/critical-power', 'site-1-topic/-/site-1']);
  assert.deepEqual(channels(variant(base, { site: 's-1' }, { severity: 'warning', kind: 'open' })), ['slack/-/site-1', 'site-1-topic/-/site-1']);
  assert.deepEqual(channels(variant(base, { site: 's-1' }, { severity: 'warning', kind: 'update' })), [], 'kinds: an update is not routed by site-1');
  assert.deepEqual(channels(variant(base, { site: undefined }, { severity: 'warning', kind: 'open' })), [], 'an alert without a site never matches a route listing sites');
  assert.deepEqual(channels(variant(base, { stream: 'machines', type: 'torque_high', site: undefined }, { severity: 'warning' })), ['maintenance/-/machines-torque']);
  assert.deepEqual(channels(variant(base, { stream: 'machines', type: 'torque_high', site: undefined }, { severity: 'critical' })), [], 'severities is an exact list');
  assert.deepEqual(router.channels(), ['pager', 'slack', 'site-1-topic', 'maintenance']);
});

test('a worker sends each transition only to its routes\' channels, rendered with the route\'s template or the channel\'s own', async () => {
  const received: Record<string, Notification[]> = { slack: [], archive: [] };
  const recording = (name: 'slack' | 'archive', defaultTemplate: 'generic' | 'slack'): Channel => ({
    name,
    kind: 'recording',
    defaultTemplate,
    target: name,
    ready: () => Promise.resolve(),
    deliver: (notification) => {
      received[name]?.push(notification);
      return Promise.resolve({ outcome: 'delivered' });
    },
    close: () => Promise.resolve(),
  });
  const worker = createDeliveryWorker({
    channels: [recording('slack', 'generic'), recording('archive', 'generic')],
    router: createAlertRouter([
      { minSeverity: 'warning', channels: ['slack'], template: 'slack' },
      { channels: ['archive'] },
    ]),
  });
  const events = alertEvents(2, { severity: 'info', score: 0.3 });
  const warning = alertEvents(1, { key: 'm-9', severity: 'warning', score: 0.6 });
  for (const event of [...events, ...warning]) assert.equal(worker.submit(event).accepted, true);
  await worker.idle();
  assert.deepEqual(received.archive?.map((n) => n.id), [...events, ...warning].map((event) => event.transition.id));
  assert.deepEqual(received.slack?.map((n) => n.id), warning.map((event) => event.transition.id));
  assert.ok(received.slack?.every((n) => 'blocks' in (JSON.parse(n.body) as object)));
  assert.ok(received.archive?.every((n) => (JSON.parse(n.body) as { id: string }).id === n.id));
  await worker.close();
});

test('a route naming a channel that does not exist is refused when the worker is made', () => {
  assert.throws(
    () => createDeliveryWorker({ channels: [], router: createAlertRouter([{ channels: ['nowhere'] }]) }),
    (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_INVALID' && /"nowhere"/.test(error.message),
  );
});

test('the Slack template gives text and blocks, escapes Slack control characters, and names the alert and transition', () => {
  const [base] = alertEvents(1);
  assert.ok(base);
  const event = variant(base, { site: 's-<1>' }, { severity: 'critical', explain: 'usageKw 20 kW > 15 & rising', by: 'ana', note: 'on it' });
  const body = JSON.parse(renderNotification(event, 'slack')) as { text: string; blocks: Array<{ type: string; text?: { text: string }; fields?: Array<{ text: string }>; elements?: Array<{ text: string }> }> };
  assert.equal(body.text, `[CRITICAL] spike opened on power/m-1 (site s-<1>): usageKw 20 kW > 15 & rising`);
  assert.deepEqual(body.blocks.map((block) => block.type), ['section', 'section', 'context']);
  assert.match(body.blocks[0]?.text?.text ?? '', /^:red_circle: \*\[CRITICAL\] spike opened on power\/m-1 \(site s-&lt;1&gt;\)\*\nusageKw 20 kW &gt; 15 &amp; rising$/);
  assert.ok(body.blocks[1]?.fields?.some((field) => field.text === '*Site*\ns-&lt;1&gt;'));
  assert.equal(body.blocks[2]?.elements?.[0]?.text, `alert ${event.alert.id} · transition ${event.transition.id} · 2025-11-23T12:13:20.000Z · by ana: on it`);

  const generic = JSON.parse(renderNotification(base, 'generic')) as { id: string; type: string; timestamp: string; data: { alert: { site: string | null; resolvedAt: number | null }; transition: { by: string | null } } };
  assert.equal(generic.id, base.transition.id);
  assert.equal(generic.type, 'alert.open');
  assert.equal(generic.timestamp, '2025-11-23T12:13:20.000Z');
  assert.equal(generic.data.alert.resolvedAt, null, 'fields without a value are null, not missing');
  assert.equal(generic.data.transition.by, null);
  assert.equal(renderNotification(base, 'generic'), renderNotification(base, 'generic'), 'the same event renders to the same bytes');
});

test('retryDelay: full jitter below min(maxDelay, base·2^(n−1)), Retry-After as a floor, and an end to retrying', () => {
  const policy = { attempts: 4, baseDelayMs: 500, maxDelayMs: 1500 };
  assert.deepEqual(retryDelay(policy, 1, () => 0.5), { retry: true, delayMs: 250 });
  assert.deepEqual(retryDelay(policy, 2, () => 0.999), { retry: true, delayMs: 999 });
  assert.deepEqual(retryDelay(policy, 3, () => 0.999), { retry: true, delayMs: 1498 }, 'capped at maxDelay');
  assert.deepEqual(retryDelay(policy, 1, () => 0, 1200), { retry: true, delayMs: 1200 }, 'never sooner than Retry-After');
  assert.deepEqual(retryDelay(policy, 4, () => 0), { retry: false, reason: 'gave up after 4 attempts' });
  assert.equal(retryDelay(policy, 1, () => 0, 1501).retry, false);
});

test('parseRetryAfter reads delay-seconds and HTTP dates, and ignores what it cannot read', () => {
  const now = Date.parse('2025-11-23T12:00:00Z');
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter('Sun, 23 Nov 2025 12:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Sunday, 23-Nov-25 12:01:00 GMT', now), 60_000, 'the obsolete RFC 850 form');
  assert.equal(parseRetryAfter('Sun, 23 Nov 2025 11:00:00 GMT', now), 0, 'a date in the past means now');
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter('-5', now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});

test('topicFor fills an MQTT topic from the alert, keeping each value inside one topic level', () => {
  const [base] = alertEvents(1);
  assert.ok(base);
  assert.equal(topicFor('gridpulse/alerts/{site}/{type}/{severity}/{kind}', base), 'gridpulse/alerts/s-1/spike/info/open');
  assert.equal(topicFor('a/{site}/{key}/{unknown}', variant(base, { site: undefined, key: 'm/1+#' })), 'a/_/m_1__/{unknown}');
});
