import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertManager } from '../../src/alerts/index.js';
import { createApiApp, type Platform } from '../../src/api/index.js';
import { parseConfig } from '../../src/config/index.js';
import type { Aggregate, AlertEvent } from '../../src/model/index.js';
import { createDuckDbStore, type Store } from '../../src/stores/index.js';
import { MINUTE, POLICY, SECOND, T0, finding } from '../helpers/alerts.js';

// The API over a real (in-memory DuckDB) store and a real alert manager; the platform's other
// duties (ingest, live feed, simulator) are not part of these routes and refuse to be called.

function notUsed(): never {
  throw new Error('not used by these routes');
}

function aggregate(key: string, site: string): Aggregate {
  return { stream: 'power', key, site, window: '1m', start: T0, end: T0 + MINUTE, revision: 0, count: 6, metrics: ['usageKw'], stats: [6, 1, 2, 1.5, 9, 0.1, 1, 2], energyKwh: null };
}

async function setup(options: { assign: boolean }) {
  const { config } = parseConfig({ simulator: { enabled: false } });
  const store: Store = createDuckDbStore({ path: ':memory:' });
  await store.ready();
  const events: AlertEvent[] = [];
  const manager = createAlertManager({ policy: POLICY, emit: (e) => events.push(e) });
  const platform: Platform = {
    streams: Object.values(config!.streams),
    defaultStream: 'power',
    store,
    live: { subscribe: () => () => undefined, subscribers: 0 },
    ingest: notUsed,
    acknowledgeAlert: (id, by, note) => Promise.resolve(manager.acknowledge(id, T0 + 30 * MINUTE, by, note)),
    resolveAlert: (id, by, note) => Promise.resolve(manager.resolve(id, T0 + 30 * MINUTE, by, note)),
    liveFeatures: () => undefined,
    recentReadings: notUsed,
    status: notUsed,
    startSimulation: notUsed,
    ...(options.assign ? { assignAlert: (id: string, assignee: string, by: string | undefined, note: string | undefined) => Promise.resolve(manager.assign(id, T0 + 30 * MINUTE, assignee, by, note)) } : {}),
  };
  const app = await createApiApp({ platform, server: config!.server, now: () => T0 + 20 * MINUTE });
  return {
    app,
    store,
    manager,
    events,
    async flush() {
      await store.writeAlertEvents(events.splice(0));
    },
    async close() {
      await app.close();
      await store.close();
    },
  };
}

void test('GET /api/incidents: a site outage of 50 meters is one incident linking the 50 device alerts', async () => {
  const h = await setup({ assign: false });
  try {
    const devices = Array.from({ length: 50 }, (_, i) => `s-3-m${i}`);
    await h.store.upsertAggregates([...devices.map((key) => aggregate(key, 's-3')), ...Array.from({ length: 20 }, (_, i) => aggregate(`s-1-m${i}`, 's-1'))]);
    devices.forEach((key, i) => h.manager.onFinding(finding(T0 + 5 * MINUTE + i * SECOND, { key, site: 's-3', type: 'silence', holds: true, severity: 'warning' })));
    h.manager.onFinding(finding(T0 + 6 * MINUTE, { key: 's-1-m4', site: 's-1', type: 'silence', holds: true }));
    h.manager.onFinding(finding(T0 + 6 * MINUTE, { key: 's-1-m5', site: 's-1', type: 'spike' }));
    await h.flush();
    const response = await h.app.inject({ method: 'GET', url: '/api/incidents' });
    assert.equal(response.statusCode, 200, response.body);
    const { incidents } = response.json<{ incidents: Array<{ hint: string; site: string | null; devices: string[]; alertIds: string[]; siteDevices: number | null; status: string }> }>();
    assert.deepEqual(incidents.map((i) => [i.hint, i.site, i.alertIds.length, i.siteDevices, i.status]), [
      ['site outage', 's-3', 50, 50, 'open'],
      ['device fault', 's-1', 1, 20, 'open'],
    ]);
    const bad = await h.app.inject({ method: 'GET', url: '/api/incidents?from=yesterday' });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /from/);
  } finally {
    await h.close();
  }
});

void test('POST /api/alerts/:id/assign assigns an open alert; 400 without an assignee, 404 for an unknown id, 409 once resolved', async () => {
  const h = await setup({ assign: true });
  try {
    h.manager.onFinding(finding(T0));
    const id = h.events[0]!.alert.id;
    await h.flush();
    const ok = await h.app.inject({ method: 'POST', url: `/api/alerts/${id}/assign`, payload: { assignee: 'ana', by: 'lead' } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json<{ alert: { assignee?: string } }>().alert.assignee, 'ana');
    assert.deepEqual(h.events.map((e) => [e.transition.kind, e.transition.assignee]), [['assign', 'ana']]);
    const missing = await h.app.inject({ method: 'POST', url: `/api/alerts/${id}/assign`, payload: { by: 'lead' } });
    assert.equal(missing.statusCode, 400);
    assert.match(missing.body, /assignee/);
    const unknown = await h.app.inject({ method: 'POST', url: '/api/alerts/al_0000000000000000/assign', payload: { assignee: 'ana' } });
    assert.equal(unknown.statusCode, 404);
    await h.flush();
    await h.app.inject({ method: 'POST', url: `/api/alerts/${id}/resolve`, payload: {} });
    await h.flush();
    const late = await h.app.inject({ method: 'POST', url: `/api/alerts/${id}/assign`, payload: { assignee: 'ben' } });
    assert.equal(late.statusCode, 409, late.body);
  } finally {
    await h.close();
  }
});

void test('POST /api/alerts/:id/assign answers 501 on a platform that cannot assign', async () => {
  const h = await setup({ assign: false });
  try {
    const response = await h.app.inject({ method: 'POST', url: '/api/alerts/al_0000000000000000/assign', payload: { assignee: 'ana' } });
    assert.equal(response.statusCode, 501);
    assert.match(response.body, /assigning alerts is not available/);
  } finally {
    await h.close();
  }
});

void test('GET /api/alerts/:id answers an alert and transitions that agree when a transition is written between its reads', async () => {
  const h = await setup({ assign: false });
  try {
    h.manager.onFinding(finding(T0 + 5 * MINUTE, { key: 'm-9', type: 'spike' }));
    await h.flush();
    const [alert] = await h.store.listAlerts({ key: 'm-9' });
    const id = alert!.id;
    // The platform looks the alert up in the store; right after its first lookup an operator's
    // acknowledge is written (the engine's store writer runs beside the API).
    let lookups = 0;
    const { config } = parseConfig({ simulator: { enabled: false } });
    const racing: Platform = {
      streams: Object.values(config!.streams),
      defaultStream: 'power',
      store: h.store,
      live: { subscribe: () => () => undefined, subscribers: 0 },
      ingest: notUsed,
      acknowledgeAlert: notUsed,
      resolveAlert: notUsed,
      liveFeatures: () => undefined,
      recentReadings: notUsed,
      status: notUsed,
      startSimulation: notUsed,
      async getAlert(alertId) {
        const found = (await h.store.listAlerts({ key: 'm-9' })).find((a) => a.id === alertId);
        if (lookups++ === 0) {
          h.manager.acknowledge(alertId, T0 + 30 * MINUTE, 'ana', undefined);
          await h.flush();
        }
        return found;
      },
    };
    const app = await createApiApp({ platform: racing, server: config!.server, now: () => T0 + 20 * MINUTE });
    try {
      const response = await app.inject({ url: `/api/alerts/${encodeURIComponent(id)}` });
      assert.equal(response.statusCode, 200, response.body);
      const body = response.json<{ alert: { status: string }; transitions: Array<{ kind: string; status: string }> }>();
      assert.deepEqual(body.transitions.map((t) => t.kind), ['open', 'acknowledge']);
      assert.equal(body.alert.status, body.transitions.at(-1)!.status, 'the alert is as its newest transition left it');
      assert.equal(lookups, 2, 'the alert was read again after the transitions changed');
    } finally {
      await app.close();
    }
  } finally {
    await h.close();
  }
});
