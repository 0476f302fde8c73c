import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import type { AggregateJson, AlertEvent } from '../../src/model/index.js';
import { errorOf, eventually, meterReading, startHarness, type Harness } from './api-harness.js';

interface SseEvent {
  event: string;
  data: unknown;
}

/** An open /api/live connection that collects the events it receives. */
interface LiveConnection {
  events: SseEvent[];
  stream: Readable;
  closed: () => boolean;
  close(): void;
}

async function connect(h: Harness, query: string, read = true): Promise<LiveConnection & { status: number; type: string }> {
  const controller = new AbortController();
  const response = await h.app.inject({ url: `/api/live${query}`, payloadAsStream: true, signal: controller.signal });
  const stream = response.stream();
  const events: SseEvent[] = [];
  let buffer = '';
  let ended = false;
  stream.on('error', () => (ended = true));
  stream.on('close', () => (ended = true));
  if (read) {
    stream.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
      }
    });
  }
  return { status: response.statusCode, type: String(response.headers['content-type']), events, stream, closed: () => ended, close: () => controller.abort() };
}

async function post(h: Harness, items: unknown[]): Promise<void> {
  const response = await h.app.inject({ method: 'POST', url: '/v1/readings', payload: JSON.stringify(items), headers: { 'content-type': 'application/json' } });
  assert.equal(response.statusCode, 200, response.body);
}

function metric(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('GET /api/live (Server-Sent Events)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ limits: { sseBufferEvents: 16 }, api: { liveStatusIntervalMs: 3_600_000, liveHeartbeatMs: 3_600_000 } });
  });
  after(() => h.close());

  test('a client gets an event stream that starts with a status event', async () => {
    const live = await connect(h, '');
    try {
      assert.equal(live.status, 200);
      assert.match(live.type, /^text\/event-stream/);
      const status = await eventually('the first status event', () => live.events.find((e) => e.event === 'status'));
      assert.equal(typeof (status.data as { totals: { accepted: number } }).totals.accepted, 'number');
    } finally {
      live.close();
    }
  });

  test('aggregates come as AggregateJson, only for the device asked for', async () => {
    const live = await connect(h, '?types=aggregate&key=m-live');
    try {
      const items = [];
      for (let minute = 0; minute < 6; minute++) items.push(meterReading('m-live', minute), meterReading('m-other', minute));
      await post(h, items);
      const first = await eventually('a 1-minute aggregate of m-live', () => live.events.find((e) => (e.data as AggregateJson).window === '1m'));
      const aggregate = first.data as AggregateJson;
      assert.equal(aggregate.key, 'm-live');
      assert.equal(aggregate.site, 's-1');
      assert.equal(aggregate.count, 1);
      assert.equal(aggregate.metrics['usageKw']?.avg, 4);
      assert.equal(aggregate.metrics['voltage']?.max, 230);
      assert.ok(live.events.every((e) => e.event === 'aggregate' && (e.data as AggregateJson).key === 'm-live'));
    } finally {
      live.close();
    }
  });

  test('alert events carry the alert and its transition; a site filter keeps other sites out', async () => {
    const here = await connect(h, '?types=alert&stream=power&site=s-9');
    const elsewhere = await connect(h, '?types=alert&site=s-1');
    try {
      await post(h, [meterReading('m-hot', 0, { siteId: 's-9' }), meterReading('m-hot', 1, { siteId: 's-9', voltage: 5000 })]);
      const opened = await eventually('an out_of_range alert event', () =>
        here.events.find((e) => (e.data as AlertEvent).alert.type === 'out_of_range' && (e.data as AlertEvent).transition.kind === 'open'),
      );
      const event = opened.data as AlertEvent;
      assert.equal(event.alert.key, 'm-hot');
      assert.equal(event.alert.status, 'open');
      assert.equal(event.transition.alertId, event.alert.id);
      assert.ok(here.events.every((e) => e.event === 'alert'));
      assert.ok(elsewhere.events.every((e) => (e.data as AlertEvent).alert.site === 's-1'), 'no s-9 alert reaches the s-1 client');
    } finally {
      here.close();
      elsewhere.close();
    }
  });

  test('bad filters are 400 JSON errors, not event streams', async () => {
    for (const [query, field] of [['?types=aggregate,gossip', 'types'], ['?stream=gas', 'stream']] as const) {
      const response = await h.app.inject({ url: `/api/live${query}` });
      assert.equal(response.statusCode, 400, query);
      assert.equal(errorOf(response).field, field);
    }
  });

  test('a client that goes away is unsubscribed', async () => {
    const before = h.platform.live.subscribers;
    const live = await connect(h, '?types=status');
    assert.equal(h.platform.live.subscribers, before + 1);
    const during = (await h.app.inject({ url: '/metrics' })).body;
    assert.equal(metric(during, 'gridpulse_sse_clients'), 1);
    live.close();
    await eventually('the subscription to end', () => (h.platform.live.subscribers === before ? true : undefined));
    const afterwards = (await h.app.inject({ url: '/metrics' })).body;
    assert.equal(metric(afterwards, 'gridpulse_sse_clients'), 0);
  });

  test('a client that does not read is dropped once its buffer is full; a reading client is not', async () => {
    const slow = await connect(h, '?types=aggregate', false);
    const fast = await connect(h, '?types=aggregate');
    try {
      const items = [];
      for (let minute = 0; minute < 30; minute++) for (let meter = 0; meter < 10; meter++) items.push(meterReading(`m-flood-${meter}`, minute));
      await post(h, items);
      await eventually('the slow client to be dropped', () => (slow.closed() ? true : undefined));
      const metrics = (await h.app.inject({ url: '/metrics' })).body;
      assert.equal(metric(metrics, 'gridpulse_sse_dropped_total'), 1);
      await eventually('the fast client to get every meter', () => (new Set(fast.events.map((e) => (e.data as AggregateJson).key)).size >= 10 ? true : undefined));
      assert.equal(fast.closed(), false);
    } finally {
      slow.close();
      fast.close();
    }
  });
});
