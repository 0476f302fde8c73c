// The Elasticsearch store against RECORDED exchanges: no Elasticsearch can run on this machine, so
// each test scripts a replay server (test/helpers/es-replay.ts) with request/response pairs whose
// shapes come from the Elasticsearch 7.10 REST API documentation (test/fixtures/elasticsearch/,
// each file names its page). The tests check (a) what the store sends — index names per UTC day,
// the template's mapping, bulk action lines with _id and version, search bodies — and (b) what it
// makes of the answers: points, alerts, statuses, retention counts, per-item errors and retries.
// What they cannot show is that a real cluster answers these requests the same way.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GpError, opsEvent } from '../../src/model/index.js';
import { createElasticsearchStore, type ElasticsearchStoreOptions } from '../../src/stores/elasticsearch-store.js';
import { dailyIndex, indexDay } from '../../src/stores/elasticsearch-schema.js';
import type { Store } from '../../src/stores/index.js';
import { fixture, startReplay, type Exchange, type RecordedRequest, type Replay } from '../helpers/es-replay.js';
import { DAY, MINUTE, alertEvent, reading, windowOf } from '../helpers/store-conformance.js';

const W0 = Date.UTC(2025, 10, 7, 12, 0, 0);
const R1 = Date.UTC(2025, 10, 7, 23, 59, 40);
const R2 = Date.UTC(2025, 10, 8, 0, 0, 10);
const RM = Date.UTC(2025, 10, 8, 0, 0, 20);

const READY: readonly Exchange[] = [
  fixture('index-template-put-power-raw'),
  fixture('index-template-put', { path: '/_index_template/gridpulse-power-usage-agg' }),
  fixture('index-template-put', { path: '/_index_template/gridpulse-power-alerts' }),
  fixture('index-template-put', { path: '/_index_template/gridpulse-internal' }),
];
const INFO = fixture('info-7.10.2');

let open: { replay: Replay; store: Store }[] = [];
afterEach(async () => {
  for (const { replay, store } of open) {
    await store.close().catch(() => undefined);
    await replay.close();
  }
  open = [];
});

/** A ready store on a replay of `script` (after the exchanges of `ready()`). */
async function storeOn(script: readonly Exchange[], options: Partial<ElasticsearchStoreOptions> = {}, ready = true): Promise<{ replay: Replay; store: Store }> {
  const replay = await startReplay([...(ready ? READY : []), ...script], { standing: [INFO] });
  const store = createElasticsearchStore({ url: replay.url.replace('http://', 'elasticsearch://'), retry: { baseDelayMs: 1, maxDelayMs: 5 }, ...options });
  open.push({ replay, store });
  if (ready) await store.ready();
  return { replay, store };
}

function afterReady(replay: Replay): RecordedRequest[] {
  return replay.storeRequests().slice(READY.length);
}

function ndjson(request: RecordedRequest | undefined): Record<string, unknown>[] {
  assert.ok(request !== undefined, 'expected a request');
  assert.ok(Array.isArray(request.body), `expected an NDJSON body, got ${JSON.stringify(request.body)}`);
  return request.body as Record<string, unknown>[];
}

async function rejectsWith(promise: Promise<unknown>, check: (error: GpError) => void): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof GpError, `expected a GpError, got ${String(error)}`);
    check(error);
    return true;
  });
}

describe('Elasticsearch store (recorded 7.10 exchanges)', () => {
  test('ready() passes the client product check of a 7.10.2 node and installs composable templates with the reference mapping', async () => {
    const { replay } = await storeOn([]);
    replay.assertDone();
    // The client checks the product first, once: GET / of a 7.10.2 node has no x-elastic-product header.
    assert.deepEqual(replay.requests.map((r) => `${r.method} ${r.path}`), [
      'GET /',
      'PUT /_index_template/gridpulse-power-usage-raw',
      'PUT /_index_template/gridpulse-power-usage-agg',
      'PUT /_index_template/gridpulse-power-alerts',
      'PUT /_index_template/gridpulse-internal',
    ]);
    const raw = replay.requests[1]?.body as { index_patterns: string[]; template: { aliases: unknown; mappings: { properties: Record<string, unknown>; dynamic_templates: unknown[] } } };
    assert.deepEqual(raw.index_patterns, ['power-usage-raw-*']);
    assert.deepEqual(raw.template.aliases, { 'gridpulse-raw': {} });
    const properties = raw.template.mappings.properties;
    assert.deepEqual(
      Object.fromEntries(['timestamp', 'meterId', 'siteId', 'usageKw', 'alertType', 'alertLevel', 'explain'].map((name) => [name, properties[name]])),
      {
        timestamp: { type: 'date' },
        meterId: { type: 'keyword' },
        siteId: { type: 'keyword' },
        usageKw: { type: 'scaled_float', scaling_factor: 100 },
        alertType: { type: 'keyword' },
        alertLevel: { type: 'keyword' },
        explain: { type: 'text' },
      },
    );
    // Dynamic numbers (metric values, statistics) are doubles, so sums in Elasticsearch are exact.
    assert.deepEqual(raw.template.mappings.dynamic_templates.slice(0, 2), [
      { whole_numbers_as_double: { match_mapping_type: 'long', mapping: { type: 'double' } } },
      { fractions_as_double: { match_mapping_type: 'double', mapping: { type: 'double' } } },
    ]);
    const agg = replay.requests[2]?.body as { index_patterns: string[]; template: { aliases: unknown } };
    assert.deepEqual([agg.index_patterns, agg.template.aliases], [['power-usage-agg-*'], { 'gridpulse-agg': {} }]);
    const internal = replay.requests[4]?.body as { index_patterns: string[] };
    assert.deepEqual(internal.index_patterns, ['gridpulse-ops-*', 'gridpulse-alert-transitions', 'gridpulse-devices']);
  });

  test('an OSS node (build_flavor "oss") fails the product check with a clear error', async () => {
    const replay = await startReplay([], { standing: [fixture('info-7.10.2-oss')] });
    const store = createElasticsearchStore({ url: replay.url.replace('http://', 'elasticsearch://'), retry: { attempts: 1 } });
    open.push({ replay, store });
    await rejectsWith(store.ready(), (error) => {
      assert.equal(error.code, 'GP_STORE_FAILED');
      assert.match(error.message, /not a supported Elasticsearch/);
    });
    assert.deepEqual(replay.requests.map((r) => `${r.method} ${r.path}`), ['GET /']);
  });

  test('credentials from the URL go in the Authorization header and never into an error message', async () => {
    const replay = await startReplay([fixture('security-exception-403')], { standing: [INFO] });
    const url = replay.url.replace('http://', 'elasticsearch://gridpulse:s3cr%40t@');
    const store = createElasticsearchStore({ url, retry: { attempts: 1 } });
    open.push({ replay, store });
    await rejectsWith(store.ready(), (error) => {
      assert.equal(error.code, 'GP_STORE_FAILED');
      assert.match(error.message, /403 security_exception: action \[indices:admin\/index_template\/put\] is unauthorized/);
      assert.match(error.message, /gridpulse:\*\*\*@127\.0\.0\.1/);
      assert.doesNotMatch(JSON.stringify({ message: error.message, details: error.details }), /s3cr/);
    });
    replay.assertDone();
    assert.equal(replay.requests[1]?.headers.authorization, `Basic ${Buffer.from('gridpulse:s3cr@t').toString('base64')}`);
  });

  test('store URLs: elasticsearch:// is HTTP on port 9200 by default, elasticsearch+https:// is HTTPS; anything else is a config error', () => {
    assert.throws(() => createElasticsearchStore({ url: 'elasticsearch://' }), (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_INVALID' && /store url/.test(error.message));
    assert.throws(
      () => createElasticsearchStore({ url: 'redis://u:secret@h:6379' }),
      (error: unknown) => error instanceof GpError && error.details['field'] === 'url' && !error.message.includes('secret'),
    );
    assert.throws(() => createElasticsearchStore({ url: 'elasticsearch://h', refresh: 'later' as 'wait_for' }), /refresh: expected "wait_for", true or false/);
    // These only parse; nothing connects before ready().
    for (const url of ['elasticsearch://h', 'elasticsearch+https://elastic:pw@h:9243', 'https://h:9200']) assert.equal(createElasticsearchStore({ url }).kind, 'elasticsearch');
  });

  test('readings go to daily indices by UTC day with create actions and deterministic _ids; a new stream gets its template first; a replay is absorbed', async () => {
    const rows = [
      reading('m-1', R1, 1, { usageKw: 12.34, voltage: 229.8 }),
      reading('m-1', R1, 1, { usageKw: 99 }),
      reading('m-1', R2, 2, { usageKw: Number.NaN, voltage: 230.1 }),
      { stream: 'machines', key: 'machine-001', site: undefined, time: RM, offset: 7, values: { torque_nm: 42.8 } },
    ];
    const { replay, store } = await storeOn([
      fixture('index-template-put', { path: '/_index_template/gridpulse-machines-raw' }),
      fixture('bulk-readings-created'),
      fixture('bulk-create-conflicts'),
    ]);
    await store.writeReadings(rows);
    // The same rows again: every create is a 409 "document already exists", which is not an error.
    await store.writeReadings(rows);
    replay.assertDone();
    const [template, first, second] = afterReady(replay);
    assert.deepEqual((template?.body as { index_patterns: string[] }).index_patterns, ['machines-raw-*']);
    assert.equal(first?.query['refresh'], 'wait_for');
    const lines = ndjson(first);
    assert.deepEqual(lines.filter((_, i) => i % 2 === 0), [
      { create: { _index: 'power-usage-raw-2025.11.07', _id: `power|m-1|${R1}|1` } },
      { create: { _index: 'power-usage-raw-2025.11.08', _id: `power|m-1|${R2}|2` } },
      { create: { _index: 'machines-raw-2025.11.08', _id: `machines|machine-001|${RM}|7` } },
      { update: { _index: 'gridpulse-devices', _id: 'power|m-1', retry_on_conflict: 3 } },
      { update: { _index: 'gridpulse-devices', _id: 'machines|machine-001', retry_on_conflict: 3 } },
    ]);
    // The first copy in a batch is kept; NaN is stored as null; the reference names repeat key and site.
    assert.deepEqual(lines[1], { usageKw: 12.34, voltage: 229.8, stream: 'power', key: 'm-1', site: 's-1', timestamp: R1, offset: 1, meterId: 'm-1', siteId: 's-1' });
    assert.equal(lines[3]?.['usageKw'], null);
    // Devices already known are not upserted again.
    assert.equal(ndjson(second).length, 6);
  });

  test('aggregates are indexed with version_type external_gte and the revision as version; an older revision refused with 409 is not an error', async () => {
    const { replay, store } = await storeOn([fixture('bulk-aggregates-version-conflict')]);
    await store.upsertAggregates([
      windowOf('m-1', '1m', W0, 10, { revision: 0 }),
      windowOf('m-2', '1m', W0, 100, { site: 's-2' }),
      windowOf('m-1', '1m', W0, 11, { revision: 1 }),
    ]);
    replay.assertDone();
    const lines = ndjson(afterReady(replay)[0]);
    // In the batch the higher revision wins already; the cluster decides against what it stores.
    assert.deepEqual(lines[0], { index: { _index: 'power-usage-agg-2025.11.07', _id: `power|m-1|1m|${W0}`, version: 1, version_type: 'external_gte' } });
    assert.deepEqual(lines[2], { index: { _index: 'power-usage-agg-2025.11.07', _id: `power|m-2|1m|${W0}`, version: 0, version_type: 'external_gte' } });
    assert.deepEqual(lines[1], {
      usageKw: 11,
      voltage: 230,
      stream: 'power',
      key: 'm-1',
      site: 's-1',
      meterId: 'm-1',
      siteId: 's-1',
      window: '1m',
      timestamp: W0,
      end: W0 + MINUTE,
      revision: 1,
      count: 6,
      energyKwh: 0.25,
      metrics: ['usageKw', 'voltage'],
      stats: {
        usageKw: { count: 6, min: 10, max: 12, avg: 11, sum: 66, stddev: 0.5, first: 10, last: 11.5 },
        voltage: { count: 6, min: null, max: null, avg: 230, sum: null, stddev: null, first: null, last: null },
      },
    });
  });

  test('a bulk refused as a whole with 429 is sent again after a backoff and succeeds', async () => {
    const { replay, store } = await storeOn([fixture('bulk-429-rejected'), fixture('bulk-ops-created')]);
    await store.writeOps([
      opsEvent('late', 'power', 'late by 3 min', { key: 'm-1', time: W0, offset: 4, lagMs: 180_000 }),
      opsEvent('invalid', 'power', 'usageKw: expected a number', { offset: 5, field: 'usageKw', expected: 'a number', got: '"x"' }),
    ]);
    replay.assertDone();
    const [refused, accepted] = afterReady(replay);
    assert.deepEqual(refused?.body, accepted?.body);
    // Ops events without any time live in the undated index, which retention never deletes.
    assert.deepEqual(ndjson(accepted).filter((_, i) => i % 2 === 0).map((line) => (line['create'] as { _index: string })._index), ['gridpulse-ops-2025.11.07', 'gridpulse-ops-undated']);
  });

  test('a bulk item refused with 429 is sent again alone; the item that succeeded is not resent', async () => {
    const { replay, store } = await storeOn([fixture('bulk-item-429'), fixture('bulk-transition-created')]);
    await store.writeAlertEvents([alertEvent({ id: 'a-1', seq: 0, openedAt: W0 })]);
    replay.assertDone();
    const [first, retry] = afterReady(replay);
    assert.equal(ndjson(first).length, 4);
    assert.deepEqual(ndjson(retry)[0], { create: { _index: 'gridpulse-alert-transitions', _id: 'a-1#0' } });
    assert.equal(ndjson(retry).length, 2);
  });

  test('a bulk item still refused with 429 after every attempt fails the write, naming the item', async () => {
    const { replay, store } = await storeOn([fixture('bulk-item-429'), fixture('bulk-transition-429')], { retry: { attempts: 2, baseDelayMs: 1 } });
    await rejectsWith(store.writeAlertEvents([alertEvent({ id: 'a-1', seq: 0, openedAt: W0 })]), (error) => {
      assert.equal(error.code, 'GP_STORE_FAILED');
      assert.equal(error.details['field'], 'events[0].transition');
      assert.match(error.message, /^events\[0\]\.transition: Elasticsearch still refused after 2 attempts .*429 es_rejected_execution_exception/);
    });
    replay.assertDone();
  });

  test('a document the mapping refuses (400 mapper_parsing_exception) fails the write as bad input naming the item, without retrying', async () => {
    const { replay, store } = await storeOn([fixture('bulk-item-mapper-parsing')]);
    await rejectsWith(store.writeReadings([reading('m-1', W0, 3, { usageKw: 1 }), reading('m-1', W0 + 1000, 4, { phase: 3 })]), (error) => {
      assert.equal(error.code, 'GP_INPUT_INVALID');
      assert.equal(error.details['field'], 'readings[1]');
      assert.equal(error.details['id'], `power|m-1|${W0 + 1000}|4`);
      assert.match(error.message, /^readings\[1\]: Elasticsearch refused the document \(index power-usage-raw-2025\.11\.07, _id "power\|m-1\|1762516801000\|4"\).*400 mapper_parsing_exception: object mapping for \[phase\]/);
    });
    replay.assertDone();
    assert.equal(afterReady(replay).length, 1);
  });

  test('bad input is refused before any request, naming the field', async () => {
    const { replay, store } = await storeOn([]);
    await rejectsWith(store.writeReadings([reading('m-1', Number.NaN, 1, {})]), (error) => assert.equal(error.details['field'], 'readings[0].time'));
    // A metric may not take the name of a document field.
    await rejectsWith(store.writeReadings([reading('m-1', W0, 1, { timestamp: 3 })]), (error) => assert.equal(error.details['field'], 'readings[0].values.timestamp'));
    await rejectsWith(store.upsertAggregates([{ ...windowOf('m-1', '1m', W0, 1), revision: -1 }]), (error) => assert.equal(error.details['field'], 'aggregates[0].revision'));
    await rejectsWith(store.querySeries({ key: 'm-1', metric: 'usageKw', from: W0 + 1, to: W0, resolution: '1m' }), (error) => assert.equal(error.details['field'], 'from'));
    await rejectsWith(store.listAlerts({ status: 'closed' as 'open' }), (error) => assert.equal(error.details['field'], 'status'));
    await rejectsWith(store.dataQuality({ by: 'device' as 'key' }), (error) => assert.equal(error.details['field'], 'by'));
    assert.deepEqual(afterReady(replay), []);
  });

  test('querySeries raw reads readings in time order from the stream\'s raw indices; a missing value is null', async () => {
    const { replay, store } = await storeOn([fixture('search-raw-hits')]);
    const series = await store.querySeries({ stream: 'power', key: 'm-1', metric: 'usageKw', from: R1, to: R2, resolution: 'raw' });
    replay.assertDone();
    assert.deepEqual(series, {
      key: 'm-1',
      metric: 'usageKw',
      resolution: 'raw',
      points: [
        { time: R1, count: 1, min: 12.34, max: 12.34, avg: 12.34, last: 12.34 },
        { time: R2, count: 0, min: null, max: null, avg: null, last: null },
      ],
    });
  });

  test('querySeries 1m reads the window statistics from the agg alias; auto picks 15m for three days and searches that window', async () => {
    const { replay, store } = await storeOn([fixture('search-agg-1m-hits'), fixture('search-empty-hits')]);
    const series = await store.querySeries({ key: 'm-1', metric: 'usageKw', from: W0, to: W0 + MINUTE, resolution: '1m' });
    assert.deepEqual(series.points, [
      { time: W0, count: 6, min: 11, max: 13, avg: 12, last: 12.5 },
      { time: W0 + MINUTE, count: 6, min: 19, max: 21, avg: 20, last: 20.5 },
    ]);
    const auto = await store.querySeries({ stream: 'power', key: 'm-1', metric: 'usageKw', from: W0, to: W0 + 3 * DAY, resolution: 'auto' });
    assert.deepEqual([auto.resolution, auto.points], ['15m', []]);
    replay.assertDone();
    const filters = (afterReady(replay)[1]?.body as { query: { bool: { filter: unknown[] } } }).query.bool.filter;
    assert.deepEqual(filters.slice(2), [{ term: { stream: 'power' } }, { term: { window: '15m' } }, { exists: { field: 'stats.usageKw.count' } }]);
  });

  test('queryFleetSeries sums device averages per window start (composite date_histogram); a window without values has null statistics', async () => {
    const { replay, store } = await storeOn([fixture('search-fleet-composite')]);
    const fleet = await store.queryFleetSeries({ stream: 'power', metric: 'usageKw', from: W0, to: W0 + 2 * MINUTE, resolution: '1m' });
    replay.assertDone();
    assert.deepEqual(fleet, {
      metric: 'usageKw',
      resolution: '1m',
      points: [
        { time: W0, devices: 3, sum: 119.5, avg: 119.5 / 3, min: 7.5, max: 100 },
        { time: W0 + MINUTE, devices: 2, sum: 121.5, avg: 60.75, min: 20, max: 101.5 },
        { time: W0 + 2 * MINUTE, devices: 0, sum: null, avg: null, min: null, max: null },
      ],
    });
  });

  test('queryFleetSeries by site counts aggregates of the site and, for aggregates without a site, the devices last seen there', async () => {
    const { replay, store } = await storeOn([fixture('search-devices-of-site'), fixture('search-fleet-composite')]);
    await store.queryFleetSeries({ stream: 'power', metric: 'usageKw', from: W0, to: W0 + 2 * MINUTE, resolution: '1m', site: 's-2' });
    replay.assertDone();
    const filters = (afterReady(replay)[1]?.body as { query: { bool: { filter: unknown[] } } }).query.bool.filter;
    assert.deepEqual(filters.at(-1), {
      bool: {
        should: [
          { term: { site: 's-2' } },
          { bool: { filter: [{ term: { stream: 'power' } }, { terms: { key: ['m-2', 'm-3'] } }], must_not: [{ exists: { field: 'site' } }] } },
        ],
        minimum_should_match: 1,
      },
    });
  });

  test('latestStatus takes each device\'s newest 1m window (top_hits) and counts its open and acknowledged alerts', async () => {
    const { replay, store } = await storeOn([fixture('search-latest-composite-top-hits'), fixture('search-open-alerts-composite')]);
    const status = await store.latestStatus({ stream: 'power' });
    replay.assertDone();
    assert.deepEqual(status, [
      { stream: 'power', key: 'm-1', site: 's-1', lastSeen: W0 + 3 * MINUTE, lastAvg: { usageKw: 30, voltage: 230 }, openAlerts: 2 },
      { stream: 'power', key: 'm-2', site: 's-2', lastSeen: W0 + 2 * MINUTE, lastAvg: { usageKw: 101.5, voltage: 230 }, openAlerts: 1 },
      { stream: 'power', key: 'm-3', site: null, lastSeen: W0 + MINUTE, lastAvg: { usageKw: 7.5, voltage: 230 }, openAlerts: 0 },
    ]);
    assert.deepEqual(await store.latestStatus({ keys: [] }), []);
  });

  test('listAlerts sends every filter and reads alerts newest first; alertTransitions come in seq order with operator fields', async () => {
    const { replay, store } = await storeOn([fixture('search-alerts-hits'), fixture('search-transitions-hits')]);
    const alerts = await store.listAlerts({ site: 's-1', type: 'drop', status: ['open', 'resolved'], severity: 'critical', from: W0, to: W0 + 9 * MINUTE, limit: 2 });
    assert.deepEqual(alerts.map((a) => [a.id, a.status, a.severity, a.type, a.resolvedAt]), [
      ['a-2', 'resolved', 'critical', 'drop', W0 + 5 * MINUTE],
      ['a-1', 'open', 'warning', 'spike', undefined],
    ]);
    assert.deepEqual(alerts[1], {
      id: 'a-1', stream: 'power', key: 'm-1', site: 's-1', type: 'spike', metric: 'usageKw', severity: 'warning', status: 'open',
      openedAt: W0, updatedAt: W0, resolvedAt: undefined, score: 0.6, peakScore: 0.9, value: 42.5, findings: 1,
      explain: 'usageKw 42.5 kW rose 80% over baseline 23.5 kW (seq 0)',
    });
    const transitions = await store.alertTransitions('a-2');
    replay.assertDone();
    assert.deepEqual(transitions[1], {
      id: 'a-2#1', alertId: 'a-2', seq: 1, kind: 'resolve', time: W0 + 5 * MINUTE, status: 'resolved', severity: 'critical', score: Number.NaN,
      explain: 'resolved by operator', by: 'ana', note: 'meter replaced',
    });
    assert.equal(Object.hasOwn(transitions[0] ?? {}, 'by'), false);
    const query = (afterReady(replay)[0]?.body as { query: { bool: { filter: unknown[] } } }).query.bool.filter;
    assert.deepEqual(query, [
      { term: { site: 's-1' } },
      { term: { alertType: 'drop' } },
      { terms: { status: ['open', 'resolved'] } },
      { terms: { alertLevel: ['critical'] } },
      { bool: { should: [{ bool: { must_not: [{ exists: { field: 'resolvedAt' } }] } }, { range: { resolvedAt: { gte: W0, format: 'epoch_millis' } } }], minimum_should_match: 1 } },
      { range: { openedAt: { lte: W0 + 9 * MINUTE, format: 'epoch_millis' } } },
    ]);
  });

  test('dataQuality by site groups ops counts under the device\'s last known site; events without a device come last', async () => {
    const { replay, store } = await storeOn([fixture('search-ops-composite'), fixture('search-devices-sites')]);
    const rows = await store.dataQuality({ stream: 'power', by: 'site' });
    replay.assertDone();
    const zero = { invalid: 0, duplicate: 0, out_of_order: 0, late: 0, too_late: 0, gap: 0, clock_skew: 0, evicted: 0 };
    assert.deepEqual(rows, [
      { stream: 'power', group: 's-1', counts: { ...zero, late: 2 }, total: 2 },
      { stream: 'power', group: 's-2', counts: { ...zero, gap: 1, too_late: 1 }, total: 2 },
      { stream: 'power', group: null, counts: { ...zero, invalid: 1 }, total: 1 },
    ]);
  });

  test('counts reads _count of each alias and index', async () => {
    const count = (target: string, value: number): Exchange => fixture('count', { path: `/${target}/_count`, responseBody: { count: value, _shards: { total: 1, successful: 1, skipped: 0, failed: 0 } } });
    const { replay, store } = await storeOn([
      count('gridpulse-raw', 5), count('gridpulse-agg', 10), count('gridpulse-alerts', 1), count('gridpulse-alert-transitions', 2), count('gridpulse-ops-*', 2),
    ]);
    assert.deepEqual(await store.counts(), { readings: 5, aggregates: 10, alerts: 1, transitions: 2, ops: 2 });
    replay.assertDone();
  });

  test('retention deletes whole daily indices before the cutoff, deletes by query in the day it falls in, and never an index holding open alerts', async () => {
    const now = W0 + 100 * DAY; // 2026-02-15T12:00Z: readings cut at 02-01 12:00, aggregates and alerts at 2025-11-17 12:00, ops at 01-16 12:00
    const deleted = (target: string, count: number): Exchange => fixture('delete-by-query', { path: `/${target}/_delete_by_query`, responseBody: { ...(fixture('delete-by-query').response.body as object), total: count, deleted: count } });
    const { replay, store } = await storeOn([
      fixture('cat-indices-raw'),
      deleted('power-usage-raw-2026.02.01', 1),
      fixture('delete-index', { path: '/power-usage-raw-2026.01.26,machines-raw-2026.01.30' }),
      fixture('cat-indices-missing-404'),
      fixture('search-expired-alerts'),
      deleted('gridpulse-alerts', 1),
      deleted('gridpulse-alert-transitions', 2),
      fixture('cat-indices-alerts'),
      fixture('delete-index', { path: '/power-alerts-2025.11.12' }),
      fixture('cat-indices-ops'),
      deleted('gridpulse-ops-2026.01.16', 1),
      fixture('delete-index', { path: '/gridpulse-ops-2026.01.10' }),
    ]);
    assert.deepEqual(await store.applyRetention(now), { readings: 1 + 4 + 1, aggregates: 0, alerts: 1, ops: 3 + 1 });
    replay.assertDone();
    const requests = afterReady(replay);
    const byQuery = requests.filter((r) => r.path.endsWith('/_delete_by_query')).map((r) => [r.path, r.body]);
    const cutoff = now - 14 * DAY;
    assert.deepEqual(byQuery[0], ['/power-usage-raw-2026.02.01/_delete_by_query', { query: { range: { timestamp: { lt: cutoff, format: 'epoch_millis' } } } }]);
    // Only resolved alerts whose resolution is older than the cutoff, and only those ids.
    const alertQuery = JSON.stringify(byQuery[1]?.[1]);
    assert.match(alertQuery, /"term":\{"status":"resolved"\}/);
    assert.match(alertQuery, /"terms":\{"id":\["old-resolved"\]\}/);
    assert.deepEqual(byQuery[2], ['/gridpulse-alert-transitions/_delete_by_query', { query: { terms: { alertId: ['old-resolved'] } } }]);
    const deletes = requests.filter((r) => r.method === 'DELETE').map((r) => r.path);
    assert.deepEqual(deletes, ['/power-usage-raw-2026.01.26,machines-raw-2026.01.30', '/power-alerts-2025.11.12', '/gridpulse-ops-2026.01.10']);
  });

  test('close is idempotent, waits for calls in flight, and later calls are refused', async () => {
    const { store } = await storeOn([]);
    await Promise.all([store.close(), store.close()]);
    await assert.rejects(store.counts(), (error: unknown) => error instanceof GpError && /closed/.test(error.message));
    await assert.rejects(store.ready(), GpError);
  });

  test('index names: the UTC day of the event time, read back by retention; other streams derive theirs', () => {
    assert.equal(dailyIndex('power', 'raw', Date.UTC(2025, 10, 7, 23, 59, 59, 999)), 'power-usage-raw-2025.11.07');
    assert.equal(dailyIndex('power', 'alerts', Date.UTC(2025, 10, 8)), 'power-alerts-2025.11.08');
    assert.equal(dailyIndex('Machines', 'agg', Date.UTC(2025, 0, 1)), 'machines-agg-2025.01.01');
    assert.equal(dailyIndex('power-usage', 'raw', Date.UTC(2025, 0, 1)), 'stream-power-usage-raw-2025.01.01');
    assert.equal(indexDay('power-usage-agg-2025.11.07'), Date.UTC(2025, 10, 7));
    assert.equal(indexDay('gridpulse-ops-undated'), undefined);
    assert.equal(indexDay('power-usage-raw-2025.02.30'), undefined);
  });
});
