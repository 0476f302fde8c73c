// Webhook delivery against real HTTP receivers on 127.0.0.1 (loopback is allowed explicitly, as
// it must be: the default allow-list refuses it). Time is a test clock: waits between attempts are
// recorded, not slept, so the tests are fast and never measure the machine.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createAlertRouter,
  createDeliveryWorker,
  createMemoryDeadLetterStore,
  createTargetPolicy,
  createWebhookChannel,
  genericBody,
  type DeliveryReport,
  type RetryPolicy,
} from '../../src/alerts/index.js';
import { GpError } from '../../src/model/index.js';
import { OTHER_SECRET, SECRET, alertEvents, gate, signatureVerifies, startReceiver, testTime, type Receiver, type ReceiverAction } from './alerts-delivery-harness.js';

const LOOPBACK = createTargetPolicy({ allowedCidrs: ['127.0.0.0/8'] });
const FAST: RetryPolicy = { attempts: 5, baseDelayMs: 1000, maxDelayMs: 60_000 };
const receivers: Receiver[] = [];
after(() => Promise.all(receivers.map((receiver) => receiver.close())));

async function receiver(respond?: (index: number) => ReceiverAction): Promise<Receiver> {
  const started = await startReceiver(respond === undefined ? undefined : (index) => respond(index));
  receivers.push(started);
  return started;
}

/** A worker with one webhook channel "hook" to `url` that every transition is routed to. */
function setup(url: string, options: { retry?: RetryPolicy; secrets?: string[]; timeoutMs?: number; random?: () => number; queueCapacity?: number } = {}) {
  const { time, clock, sleep } = testTime();
  const reports: DeliveryReport[] = [];
  const deadLetters = createMemoryDeadLetterStore();
  const channel = createWebhookChannel({
    name: 'hook',
    url,
    secrets: options.secrets ?? [SECRET],
    retry: options.retry ?? FAST,
    timeoutMs: options.timeoutMs ?? 5000,
    policy: LOOPBACK,
    clock,
  });
  const worker = createDeliveryWorker({
    channels: [channel],
    router: createAlertRouter([{ channels: ['hook'] }]),
    deadLetters,
    clock,
    sleep,
    random: options.random ?? (() => 0.5),
    onReport: (report) => reports.push(report),
    ...(options.queueCapacity === undefined ? {} : { queueCapacity: options.queueCapacity }),
  });
  return { worker, time, reports, deadLetters };
}

test('a transition is POSTed as JSON with Standard Webhooks headers whose signature a receiver can verify', async () => {
  const hooks = await receiver();
  const { worker, time } = setup(hooks.url, { secrets: [SECRET, OTHER_SECRET] });
  const [event] = alertEvents(1);
  assert.ok(event);
  assert.deepEqual(worker.submit(event), { accepted: true, channels: ['hook'] });
  await worker.idle();

  assert.equal(hooks.requests.length, 1);
  const [request] = hooks.requests;
  assert.ok(request);
  assert.equal(request.method, 'POST');
  assert.equal(request.path, '/hooks/gridpulse?token=t0k3n');
  assert.equal(request.headers['content-type'], 'application/json');
  assert.equal(request.headers['webhook-id'], event.transition.id);
  assert.equal(request.headers['webhook-timestamp'], String(Math.floor(time.now / 1000)));
  // Two secrets (a rotation) give two signatures; each verifies with its own secret, a wrong one with neither.
  assert.equal(String(request.headers['webhook-signature']).split(' ').length, 2);
  assert.ok(signatureVerifies(SECRET, request.headers, request.body));
  assert.ok(signatureVerifies(OTHER_SECRET, request.headers, request.body));
  assert.ok(!signatureVerifies(`whsec_${Buffer.alloc(32, 1).toString('base64')}`, request.headers, request.body));
  assert.ok(!signatureVerifies(SECRET, request.headers, `${request.body} `), 'a changed body must not verify');
  assert.deepEqual(JSON.parse(request.body), JSON.parse(JSON.stringify(genericBody(event))));
  assert.equal((JSON.parse(request.body) as { type: string }).type, 'alert.open');
  assert.deepEqual(worker.metrics().hook, { delivered: 1, retried: 0, failed: 0, deadLettered: 0, rejected: 0, redelivered: 0, queued: 0, disabled: undefined });
  await worker.close();
});

test('500, then 429 with Retry-After seconds, then 503 with an HTTP-date, then 200: four attempts, one id, waits honour Retry-After', async () => {
  let dateHeader = '';
  const hooks = await receiver((index) => {
    if (index === 0) return { status: 500, body: 'database down' };
    if (index === 1) return { status: 429, headers: { 'retry-after': '7' } };
    if (index === 2) return { status: 503, headers: { 'retry-after': dateHeader } };
    return { status: 200 };
  });
  const { worker, time, reports } = setup(hooks.url, { random: () => 0.5 });
  // The date is 30 s after the clock as it will stand at the third attempt.
  const [event] = alertEvents(1);
  assert.ok(event);
  worker.submit(event);
  await hooks.waitForRequests(2);
  dateHeader = new Date(time.now + 7000 + 30_000).toUTCString();
  await worker.idle();

  assert.equal(hooks.requests.length, 4);
  for (const request of hooks.requests) {
    assert.equal(request.headers['webhook-id'], event.transition.id, 'webhook-id is stable across retries');
    assert.ok(signatureVerifies(SECRET, request.headers, request.body), 'every attempt is signed');
    assert.equal(request.body, hooks.requests[0]?.body, 'the body is the same on every attempt');
  }
  // Each attempt carries its own timestamp, following the clock.
  const [first, second, third] = time.delays;
  const stamps = hooks.requests.map((request) => Number(request.headers['webhook-timestamp']));
  let at = 1_763_900_000_000;
  const expected = [0, ...time.delays].map((delay) => Math.floor((at += delay) / 1000));
  assert.deepEqual(stamps, expected, 'each attempt is stamped with the clock at that attempt');
  assert.equal(time.delays.length, 3);
  assert.ok(first !== undefined && first >= 0 && first < 1000, `first wait within full jitter of 1 s, got ${first}`);
  assert.ok(second !== undefined && second >= 7000, `Retry-After: 7 is honoured, got ${second}`);
  assert.ok(third !== undefined && third >= 29_000 && third <= 30_000, `Retry-After as an HTTP date is honoured, got ${third}`);
  assert.deepEqual(
    reports.filter((report) => report.kind === 'retry').map((report) => (report.kind === 'retry' ? report.reason : '')),
    [`HTTP 500 from http://127.0.0.1:${hooks.port}: database down`, `HTTP 429 from http://127.0.0.1:${hooks.port}`, `HTTP 503 from http://127.0.0.1:${hooks.port}`],
  );
  const metrics = worker.metrics().hook;
  assert.deepEqual([metrics?.delivered, metrics?.retried, metrics?.failed, metrics?.deadLettered], [1, 3, 3, 0]);
  assert.deepEqual(await worker.listDeadLetters(), []);
  await worker.close();
});

test('backoff is exponential with full jitter, capped by maxDelay; after the last attempt the notification is dead-lettered', async () => {
  const hooks = await receiver(() => ({ status: 502 }));
  const draws = [0.999, 0, 0.999, 0.5, 0.999];
  let drawn = 0;
  const { worker, time, reports } = setup(hooks.url, { retry: { attempts: 6, baseDelayMs: 100, maxDelayMs: 1000 }, random: () => draws[drawn++ % draws.length] ?? 0 });
  const [event] = alertEvents(1);
  assert.ok(event);
  worker.submit(event);
  await worker.idle();

  assert.equal(hooks.requests.length, 6, 'attempts: 6 means six requests');
  assert.equal(new Set(hooks.requests.map((request) => request.headers['webhook-id'])).size, 1);
  const ceilings = [100, 200, 400, 800, 1000];
  assert.equal(time.delays.length, 5);
  time.delays.forEach((delay, index) => {
    const ceiling = ceilings[index] ?? 0;
    assert.ok(delay >= 0 && delay < ceiling, `wait ${index + 1} is in [0, ${ceiling}), got ${delay}`);
  });
  // The draws near 1 show the ceiling doubling and then capped: 99, 399, 999 ms.
  assert.deepEqual([time.delays[0], time.delays[2], time.delays[4]], [99, 399, 999]);
  assert.equal(time.delays[1], 0);

  const [dead] = await worker.listDeadLetters();
  assert.ok(dead);
  assert.equal(dead.id, `hook:${event.transition.id}`);
  assert.equal(dead.attempts, 6);
  assert.equal(dead.status, 502);
  assert.equal(dead.reason, `gave up after 6 attempts: HTTP 502 from http://127.0.0.1:${hooks.port}`);
  assert.ok(!dead.reason.includes('t0k3n'), 'the webhook path and query (which may hold a token) never appear in reasons');
  assert.ok(reports.some((report) => report.kind === 'dead-lettered' && report.transitionId === event.transition.id));
  const metrics = worker.metrics().hook;
  assert.deepEqual([metrics?.delivered, metrics?.retried, metrics?.failed, metrics?.deadLettered], [0, 5, 6, 1]);
  await worker.close();
});

test('a receiver that does not answer in time, or resets the connection, is retried until it answers', async () => {
  const hooks = await receiver((index) => (index === 0 ? { hang: true } : index === 1 ? { reset: true } : { status: 201 }));
  const { worker, reports } = setup(hooks.url, { timeoutMs: 200 });
  const [event] = alertEvents(1);
  assert.ok(event);
  worker.submit(event);
  await worker.idle();
  assert.equal(hooks.requests.length, 3);
  const reasons = reports.flatMap((report) => (report.kind === 'retry' ? [report.reason] : []));
  assert.equal(reasons.length, 2);
  assert.match(reasons[0] ?? '', /timeout/);
  assert.match(reasons[1] ?? '', /socket hang up|ECONNRESET/);
  assert.equal(worker.metrics().hook?.delivered, 1);
  await worker.close();
});

test('4xx other than 408 and 429 fail at once; a redirect is not followed; 408 is retried', async () => {
  const elsewhere = await receiver();
  const statuses: ReceiverAction[] = [{ status: 400, body: 'bad payload' }, { status: 404 }, { status: 302, headers: { location: elsewhere.url } }, { status: 408 }, { status: 200 }];
  const hooks = await receiver((index) => statuses[index] ?? { status: 200 });
  const { worker } = setup(hooks.url);
  const events = alertEvents(4);
  for (const event of events.slice(0, 4)) worker.submit(event);
  await worker.idle();

  assert.equal(hooks.requests.length, 5, 'one attempt each for 400, 404 and 302; two for the 408');
  assert.equal(elsewhere.requests.length, 0, 'the redirect target is never called');
  const dead = await worker.listDeadLetters();
  assert.deepEqual(
    dead.map((entry) => [entry.transitionId, entry.status, entry.attempts]),
    [
      [events[0]?.transition.id, 400, 1],
      [events[1]?.transition.id, 404, 1],
      [events[2]?.transition.id, 302, 1],
    ],
  );
  assert.match(dead[0]?.reason ?? '', /HTTP 400 .*bad payload/);
  assert.match(dead[2]?.reason ?? '', /redirects are not followed/);
  const metrics = worker.metrics().hook;
  assert.deepEqual([metrics?.delivered, metrics?.retried, metrics?.deadLettered], [1, 1, 3]);
  await worker.close();
});

test('410 Gone disables the endpoint: reported, later notifications are dead-lettered unsent, until it is enabled again', async () => {
  const hooks = await receiver((index) => (index === 0 ? { status: 410 } : { status: 200 }));
  const { worker, reports } = setup(hooks.url);
  const events = alertEvents(3);
  worker.submit(events[0] ?? assert.fail());
  await worker.idle();
  worker.submit(events[1] ?? assert.fail());
  worker.submit(events[2] ?? assert.fail());
  await worker.idle();

  assert.equal(hooks.requests.length, 1, 'nothing is sent to an endpoint that answered 410');
  const disabled = reports.filter((report) => report.kind === 'channel-disabled');
  assert.equal(disabled.length, 1);
  assert.match(worker.metrics().hook?.disabled ?? '', /HTTP 410 Gone/);
  const dead = await worker.listDeadLetters();
  assert.equal(dead.length, 3);
  assert.match(dead[1]?.reason ?? '', /^channel disabled: HTTP 410 Gone/);
  await assert.rejects(worker.redeliver(dead[1]?.id ?? ''), (error: unknown) => error instanceof GpError && error.code === 'GP_CONFLICT');

  assert.equal(worker.enableChannel('hook'), true);
  for (const entry of dead) assert.deepEqual(await worker.redeliver(entry.id), { delivered: true, id: entry.id, channel: 'hook' });
  assert.deepEqual(hooks.requests.slice(1).map((request) => request.headers['webhook-id']), events.slice(0, 3).map((event) => event.transition.id));
  assert.deepEqual(await worker.listDeadLetters(), []);
  await worker.close();
});

test('a dead letter can be listed and redelivered by hand: same webhook-id and body, a fresh signature', async () => {
  let up = false;
  const hooks = await receiver(() => (up ? { status: 200 } : { status: 500 }));
  const { worker, time } = setup(hooks.url, { retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 10 } });
  const [open, resolve] = alertEvents(1);
  assert.ok(open && resolve);
  worker.submit(open);
  worker.submit(resolve);
  await worker.idle();
  assert.equal(hooks.requests.length, 4);
  const dead = await worker.listDeadLetters();
  assert.deepEqual(dead.map((entry) => entry.transitionId), [open.transition.id, resolve.transition.id], 'dead letters are listed oldest first');
  assert.deepEqual((await worker.listDeadLetters({ channel: 'other' })).length, 0);

  up = true;
  time.now += 3_600_000;
  const result = await worker.redeliver(dead[0]?.id ?? '');
  assert.deepEqual(result, { delivered: true, id: `hook:${open.transition.id}`, channel: 'hook' });
  const redelivered = hooks.requests[4];
  assert.ok(redelivered);
  assert.equal(redelivered.headers['webhook-id'], open.transition.id);
  assert.equal(redelivered.body, hooks.requests[0]?.body);
  assert.equal(redelivered.headers['webhook-timestamp'], String(Math.floor(time.now / 1000)), 'a redelivery is signed with its own timestamp');
  assert.ok(signatureVerifies(SECRET, redelivered.headers, redelivered.body));
  assert.deepEqual((await worker.listDeadLetters()).map((entry) => entry.transitionId), [resolve.transition.id]);
  assert.equal(worker.metrics().hook?.redelivered, 1);
  await assert.rejects(worker.redeliver('hook:al_nope:0'), (error: unknown) => error instanceof GpError && error.code === 'GP_NOT_FOUND');
  assert.equal(await worker.discardDeadLetter(`hook:${resolve.transition.id}`), true);
  assert.deepEqual(await worker.listDeadLetters(), []);
  await worker.close();
});

test('a redelivery that fails again stays in the list with one more attempt and the new reason', async () => {
  const hooks = await receiver((index) => (index < 2 ? { status: 500 } : { status: 422, body: 'schema changed' }));
  const { worker } = setup(hooks.url, { retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 10 } });
  const [event] = alertEvents(1);
  assert.ok(event);
  worker.submit(event);
  await worker.idle();
  const [dead] = await worker.listDeadLetters();
  assert.ok(dead);
  const result = await worker.redeliver(dead.id);
  assert.equal(result.delivered, false);
  const [after] = await worker.listDeadLetters();
  assert.equal(after?.attempts, 3);
  assert.equal(after?.status, 422);
  assert.match(after?.reason ?? '', /^redelivery failed: HTTP 422 .*schema changed/);
  await worker.close();
});

test('a Retry-After longer than maxDelay dead-letters the notification instead of holding the channel', async () => {
  const hooks = await receiver(() => ({ status: 503, headers: { 'retry-after': '3600' } }));
  const { worker, time } = setup(hooks.url, { retry: { attempts: 5, baseDelayMs: 1000, maxDelayMs: 60_000 } });
  const [event] = alertEvents(1);
  assert.ok(event);
  worker.submit(event);
  await worker.idle();
  assert.equal(hooks.requests.length, 1);
  assert.deepEqual(time.delays, []);
  const [dead] = await worker.listDeadLetters();
  assert.match(dead?.reason ?? '', /asked to wait 3600 s \(Retry-After\), longer than .* 60 s/);
  await worker.close();
});

test('a slow receiver does not delay a healthy one, and each channel keeps the order of its transitions', async () => {
  const release = gate();
  const slow = await receiver(() => ({ holdUntil: release.promise, status: 200 }));
  const healthy = await receiver();
  const { clock, sleep } = testTime();
  const channel = (name: string, url: string) => createWebhookChannel({ name, url, secrets: [SECRET], policy: LOOPBACK, clock, retry: FAST });
  const worker = createDeliveryWorker({
    channels: [channel('slow', slow.url), channel('healthy', healthy.url)],
    router: createAlertRouter([{ channels: ['slow', 'healthy'] }]),
    clock,
    sleep,
  });
  const events = alertEvents(3);
  for (const event of events) worker.submit(event);
  await healthy.waitForRequests(events.length);
  assert.equal(slow.requests.length, 1, 'the slow receiver still holds its first request');
  assert.equal(worker.metrics().slow?.queued, events.length);
  release.open();
  await worker.idle();
  const ids = events.map((event) => event.transition.id);
  assert.equal(worker.metrics().healthy?.delivered, events.length);
  assert.deepEqual(healthy.requests.map((request) => request.headers['webhook-id']), ids);
  assert.deepEqual(slow.requests.map((request) => request.headers['webhook-id']), ids);
  await worker.close();
});

test('a full queue refuses the transition (reported, counted, nothing queued) and frees up for a second try', async () => {
  const release = gate();
  const hooks = await receiver(() => ({ holdUntil: release.promise, status: 200 }));
  const { worker, reports } = setup(hooks.url, { queueCapacity: 2 });
  const events = alertEvents(2);
  const [a, b, c] = events;
  assert.ok(a && b && c);
  assert.equal(worker.submit(a).accepted, true);
  assert.equal(worker.submit(b).accepted, true);
  const refused = worker.submit(c);
  assert.equal(refused.accepted, false);
  assert.ok(!refused.accepted && refused.reason === 'full' && refused.channels[0] === 'hook');
  assert.deepEqual(reports.filter((report) => report.kind === 'overflow'), [{ kind: 'overflow', transitionId: c.transition.id, channels: ['hook'], capacity: 2 }]);
  assert.equal(worker.metrics().hook?.rejected, 1);

  const room = worker.waitForCapacity(c);
  release.open();
  await room;
  assert.equal(worker.submit(c).accepted, true);
  await worker.idle();
  assert.deepEqual(hooks.requests.map((request) => request.headers['webhook-id']), [a, b, c].map((event) => event.transition.id), 'each delivered once, in order');
  await worker.close();
});

test('close() dead-letters what was not delivered yet, so nothing is lost', async () => {
  const hooks = await receiver(() => ({ status: 500 }));
  const deadLetters = createMemoryDeadLetterStore();
  const channel = createWebhookChannel({ name: 'hook', url: hooks.url, secrets: [SECRET], policy: LOOPBACK, retry: FAST });
  // A wait that lasts until the worker closes.
  const sleep = (_ms: number, signal: AbortSignal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
  const worker = createDeliveryWorker({ channels: [channel], router: createAlertRouter([{ channels: ['hook'] }]), deadLetters, sleep });
  const events = alertEvents(2);
  for (const event of events) worker.submit(event);
  await hooks.waitForRequests(1);
  await worker.close();
  assert.equal(worker.submit(events[0] ?? assert.fail()).accepted, false, 'a closed worker refuses, it does not drop');
  const dead = await deadLetters.list();
  assert.deepEqual(dead.map((entry) => entry.transitionId), events.map((event) => event.transition.id));
  assert.match(dead[0]?.reason ?? '', /not delivered before the delivery worker closed; last attempt: HTTP 500/);
});

test('a webhook channel refuses bad secrets without echoing them', () => {
  const attempt = (secret: string) => () => createWebhookChannel({ name: 'hook', url: 'https://hooks.example.com/x', secrets: [secret] });
  assert.throws(attempt('s3cr3t-value'), (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_INVALID' && /without the "whsec_" prefix/.test(error.message) && !error.message.includes('s3cr3t'));
  assert.throws(attempt(`whsec_${Buffer.alloc(8).toString('base64')}`), /got a secret of 8 bytes/);
  assert.throws(attempt('whsec_not base64!'), /not base64/);
});
