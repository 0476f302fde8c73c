// A site outage through the live platform (the code `gridpulse up` runs), shared by the embedded-store
// test and the PostgreSQL (outbox relay) test: 50 meters of one site go silent together while two
// other sites keep reporting. A real webhook receiver on loopback must get one incident page linking
// the 50 silence alerts — not 50 pages — and GET /api/incidents must name the same incident; a lone
// silent meter at another site still gets its own page; when the site comes back one
// incident.resolved follows; a restart pages nothing again. Not a test file itself.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiApp } from '../../src/api/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createPlatform } from '../../src/cli/platform.js';
import { SECRET, T0, receiver, signatureValid, until, type Received } from './webhook-receiver.js';

const STEP = 10_000;
const meter = (site: string, index: number) => `${site}-m${String(index).padStart(2, '0')}`;
const SITES: ReadonlyArray<[string, number]> = [
  ['s-1', 50],
  ['s-2', 20],
  ['s-3', 10],
];

/** Every meter of every site every 10 s over [from, to), except those `quiet` says are silent at that time. */
function readings(from: number, to: number, quiet: (site: string, key: string, time: number) => boolean): string {
  const lines: string[] = [];
  for (let time = from; time < to; time += STEP) {
    for (const [site, count] of SITES) {
      for (let i = 0; i < count; i++) {
        const key = meter(site, i);
        if (!quiet(site, key, time)) lines.push(JSON.stringify({ meterId: key, siteId: site, timestamp: time, usageKw: 2 + (i % 5) * 0.1 }));
      }
    }
  }
  return lines.join('\n');
}

interface IncidentBody {
  id: string;
  type: string;
  data: { incident: { id: string; hint: string; site: string | null; deviceCount: number; alertIds: string[]; devices: string[]; status: string } };
}
interface AlertBody {
  id: string;
  type: string;
  data: { alert: { key: string; site: string; type: string } };
}

const bodyOf = <T>(r: Received): T => JSON.parse(r.body) as T;
const ids = (received: readonly Received[]) => received.map((r) => String(r.headers['webhook-id']));

/**
 * Runs the scenario on the store at `storeUrl`; throws an AssertionError when a page is missing or
 * one too many. `groupWaitMs` must cover the time the 50 alerts take to reach delivery (an outbox
 * relay hands them over one row at a time).
 */
export async function siteOutageScenario(storeUrl: string, groupWaitMs = 300): Promise<void> {
  // Long enough for the group wait and one group interval to pass: nothing more may come then.
  const settle = () => new Promise((resolve) => setTimeout(resolve, groupWaitMs + 1200));
  const hook = await receiver();
  const dir = mkdtempSync(join(tmpdir(), 'gp-incident-delivery-'));
  const { config, issues } = parseConfig({
    dataDir: dir,
    store: { url: storeUrl },
    simulator: { enabled: false },
    alerts: {
      incidents: { minDevices: 5, window: '2m' },
      delivery: {
        allow: { cidrs: ['127.0.0.0/8'] },
        channels: { hook: { type: 'webhook', url: hook.url, secret: SECRET, timeout: '2s', retry: { attempts: 3, baseDelay: '10ms', maxDelay: '50ms' } } },
        routes: [{ name: 'all', channels: ['hook'] }],
        grouping: { groupWait: groupWaitMs, groupInterval: '1s' },
      },
    },
  });
  assert.deepEqual(issues, []);
  let platform = createPlatform({ config: config!, simulator: false });
  await platform.start();
  let app = await createApiApp({ platform, server: config!.server });
  const post = async (payload: string): Promise<void> => {
    const response = await app.inject({ method: 'POST', url: '/v1/readings', headers: { 'content-type': 'application/x-ndjson' }, payload });
    assert.equal(response.statusCode, 200, response.body);
    await platform.drain();
  };
  const outageFrom = T0 + 5 * 60_000;
  const backAt = T0 + 15 * 60_000;
  const lone = meter('s-2', 7);
  try {
    // Five minutes of every meter, then site s-1 goes dark and meter s-2-m07 stops 30 s later, for ten minutes.
    await post(readings(T0, backAt, (site, key, time) => (site === 's-1' && time >= outageFrom) || (key === lone && time >= outageFrom + 30_000)));
    await until('the incident page and the lone meter page', () => hook.received.length >= 2, 30_000);
    // Past the group wait and interval: nothing more is coming for this outage.
    await settle();
    const pages = hook.received.slice();
    assert.ok(pages.every(signatureValid), 'every page is signed');
    const incidentPages = pages.filter((r) => String(r.headers['webhook-id']).startsWith('in_'));
    const devicePages = pages.filter((r) => !String(r.headers['webhook-id']).startsWith('in_'));
    assert.equal(incidentPages.length, 1, `one incident page, got ${ids(pages).join(' ')}`);
    const opened = bodyOf<IncidentBody>(incidentPages[0]!);
    assert.equal(opened.type, 'incident.opened');
    assert.equal(opened.data.incident.hint, 'site outage');
    assert.equal(opened.data.incident.site, 's-1');
    assert.equal(opened.data.incident.deviceCount, 50);
    assert.equal(opened.data.incident.alertIds.length, 50);
    assert.equal(String(incidentPages[0]!.headers['webhook-id']), `${opened.data.incident.id}:opened`);
    // The lone meter's silence is paged on its own (its open, then its updates as the silence grows);
    // no s-1 meter was paged on its own.
    const deviceBodies = devicePages.map((r) => bodyOf<AlertBody>(r));
    assert.deepEqual([...new Set(deviceBodies.map((b) => `${b.data.alert.key}/${b.data.alert.type}`))], [`${lone}/silence`]);
    assert.equal(deviceBodies[0]!.type, 'alert.open');

    // GET /api/incidents computes the same incident from the stored alerts.
    const listed = (await app.inject({ url: '/api/incidents?status=open' })).json<{ incidents: Array<{ id: string; hint: string; site: string; alertIds: string[]; devices: string[] }> }>().incidents;
    const outage = listed.find((i) => i.hint === 'site outage');
    assert.ok(outage !== undefined, JSON.stringify(listed));
    assert.equal(outage.id, opened.data.incident.id);
    assert.deepEqual([...outage.alertIds].sort(), [...opened.data.incident.alertIds].sort());
    assert.deepEqual(listed.filter((i) => i.hint === 'device fault').map((i) => i.devices), [[lone]]);

    // The site comes back: one incident.resolved, no page per meter; the lone meter's clear is its own page.
    const before = hook.received.length;
    await post(readings(backAt, backAt + 3 * 60_000, () => false));
    await until('the resolved pages', () => hook.received.length >= before + 2, 30_000);
    await settle();
    const after = hook.received.slice(before);
    assert.deepEqual(ids(after.filter((r) => String(r.headers['webhook-id']).startsWith('in_'))), [`${opened.data.incident.id}:resolved`]);
    const resolved = bodyOf<IncidentBody>(after.find((r) => String(r.headers['webhook-id']).startsWith('in_'))!);
    assert.equal(resolved.data.incident.status, 'resolved');
    const cleared = after.filter((r) => !String(r.headers['webhook-id']).startsWith('in_')).map((r) => bodyOf<AlertBody>(r));
    assert.deepEqual(cleared.map((b) => [b.type, b.data.alert.key]), [['alert.resolve', lone]]);

    // A restart from the checkpoint: the incident is not paged again.
    const sent = hook.received.length;
    await app.close();
    await platform.close();
    platform = createPlatform({ config: config!, simulator: false });
    await platform.start();
    app = await createApiApp({ platform, server: config!.server });
    await platform.drain();
    await settle();
    assert.deepEqual(ids(hook.received.slice(sent)), [], 'nothing is paged again after the restart');
  } finally {
    await app.close();
    await platform.close();
    await hook.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
