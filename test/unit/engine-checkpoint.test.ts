import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertManager, type AlertManager } from '../../src/alerts/index.js';
import { defaultConfig } from '../../src/config/index.js';
import { createDetectors } from '../../src/detectors/index.js';
import { StreamEngine, StreamRouter, type EngineSnapshot } from '../../src/engine/index.js';
import { simulateLines } from '../../src/ingest/index.js';
import { GpError, type Detector, type StreamSchema } from '../../src/model/index.js';
import { testSchema } from '../helpers/schema.js';

// Power meters with every kind of injected anomaly (spikes, outages, gaps, late readings,
// duplicates, malformed lines, ...) and two machines, routed to both built-in streams.
const config = defaultConfig();
const SCHEMAS: StreamSchema[] = [config.streams.power!, config.streams.machines!];
const LINES = [...simulateLines({ meters: 8, machines: 2, days: 1.25, seed: 11, warmupMs: '4h', anomalyRate: 3 }).lines];

/** Outputs as text, in order, each tagged with its kind; non-finite numbers kept apart from null. */
type Output = { line: number; text: string };

function serialize(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? `#${String(v)}` : v));
}

interface Harness {
  router: StreamRouter;
  engines: StreamEngine[];
  managers: AlertManager[];
  outputs: Output[];
  /** Feeds lines [from, to) (0-based), tagging outputs with the 1-based line number. */
  feed(from: number, to: number): void;
  finish(): void;
}

/** A new router with new engines, new detectors and new alert managers, like a restarted process. */
function harness(outputs: Output[] = []): Harness {
  let line = 0;
  const managers: AlertManager[] = [];
  const push = (kind: string) => (value: unknown) => outputs.push({ line, text: kind + serialize(value) });
  const engines = SCHEMAS.map(
    (schema) =>
      new StreamEngine({
        schema,
        detectors: createDetectors(schema),
        partitions: 4,
        createFindingHandler: (emit) => {
          const manager = createAlertManager({ policy: schema.alerts, emit });
          managers.push(manager);
          return manager;
        },
        outputs: {
          aggregate: push('aggregate '),
          alert: push('alert '),
          finding: push('finding '),
          ops: push('ops '),
          audit: push('audit '),
          score: (reading, score) => outputs.push({ line, text: `score ${reading.key} ${reading.time} ${score}` }),
        },
      }),
  );
  const router = new StreamRouter(engines);
  return {
    router,
    engines,
    managers,
    outputs,
    feed(from, to) {
      for (let i = from; i < to; i++) {
        line = i + 1;
        router.processText(LINES[i]!, line);
      }
    },
    finish() {
      line = Infinity;
      router.finish();
    },
  };
}

/** Runs the input, and at each cut checkpoints through JSON text and goes on in a brand-new harness. */
function resumeAt(cuts: number[]): { outputs: Output[]; last: Harness } {
  const outputs: Output[] = [];
  let current = harness(outputs);
  let from = 0;
  for (const cut of cuts) {
    current.feed(from, cut);
    const text = JSON.stringify(current.router.snapshot());
    current = harness(outputs);
    current.router.restore(JSON.parse(text));
    from = cut;
  }
  current.feed(from, LINES.length);
  current.finish();
  return { outputs, last: current };
}

const straight = harness();
const openAfterLine: number[] = [];
for (let i = 0; i < LINES.length; i++) {
  straight.feed(i, i + 1);
  openAfterLine.push(straight.managers.reduce((n, m) => n + m.openCount(), 0));
}
straight.finish();
const STRAIGHT = straight.outputs.map((o) => o.text);

/** The first line whose outputs start with `prefix` and satisfy `where`. */
function lineOf(prefix: string, where: (text: string) => boolean = () => true): number {
  const found = straight.outputs.find((o) => o.text.startsWith(prefix) && where(o.text) && Number.isFinite(o.line));
  assert.ok(found, `the simulated input has ${prefix.trim()} outputs`);
  return found.line;
}

function assertSameOutputs(resumed: Output[], what: string): void {
  const texts = resumed.map((o) => o.text);
  const first = texts.findIndex((t, i) => t !== STRAIGHT[i]);
  const line = resumed[first]?.line ?? straight.outputs[first]?.line;
  assert.ok(first < 0 && texts.length === STRAIGHT.length, `${what}: output ${first} (of input line ${line}) differs (${texts.length} vs ${STRAIGHT.length} outputs)\n  resumed:  ${texts[first]?.slice(0, 300)}\n  straight: ${STRAIGHT[first]?.slice(0, 300)}`);
}

test('the simulated input exercises what a checkpoint must carry', () => {
  const kinds = (prefix: string) => STRAIGHT.filter((t) => t.startsWith(prefix));
  assert.ok(kinds('ops {"kind":"late"').length > 0, 'late readings');
  assert.ok(kinds('ops {"kind":"duplicate"').length > 0, 'duplicates');
  assert.ok(kinds('ops {"kind":"gap"').length > 0, 'gaps (silence timers)');
  assert.ok(kinds('aggregate ').some((t) => !t.includes('"revision":0')), 'amended windows');
  assert.ok(kinds('alert ').some((t) => t.includes('"kind":"resolve"')), 'alerts that resolve');
  assert.ok(Math.max(...openAfterLine) >= 2, 'moments with several open alerts');
});

test('a run resumed from a checkpoint gives exactly the outputs of an uninterrupted run, at every kind of cut', () => {
  const lateLine = lineOf('aggregate ', (t) => !t.includes('"revision":0')); // a LATE reading amends windows here
  const duplicateLine = lineOf('ops {"kind":"duplicate"');
  const mostOpen = openAfterLine.indexOf(Math.max(...openAfterLine)) + 1;
  const cuts: Array<[string, number]> = [
    ['after the first few readings (no watermark yet)', 3],
    ['just before a LATE reading that amends emitted windows', lateLine - 1],
    ['just after that LATE reading', lateLine],
    ['just before a duplicate reading', duplicateLine - 1],
    [`while ${openAfterLine[mostOpen - 1]} alerts are open`, mostOpen],
    ['after the last line, before finish', LINES.length],
  ];
  assert.ok(openAfterLine[mostOpen - 1]! >= 2);
  // One run restarted from a checkpoint at each of these cuts in turn (a new process each time).
  cuts.sort((a, b) => a[1] - b[1]);
  const { outputs, last } = resumeAt(cuts.map(([, cut]) => cut));
  assertSameOutputs(outputs, `cuts ${cuts.map(([what, cut]) => `at line ${cut} (${what})`).join(', ')}`);
  assert.deepEqual(
    last.engines.map((e) => ({ ...e.stats })),
    straight.engines.map((e) => ({ ...e.stats })),
    'counters at the end',
  );
});

test('at arbitrary cuts too, and the resumed state ends identical to the uninterrupted one', () => {
  const cuts = [2_000, 7_500, 7_501, 12_000, LINES.length - 10];
  const { outputs, last } = resumeAt(cuts);
  assertSameOutputs(outputs, `cuts at lines ${cuts.join(', ')}`);
  // The whole state, alert managers included, ends identical to the uninterrupted run's.
  assert.equal(JSON.stringify(last.router.snapshot()), JSON.stringify(straight.router.snapshot()));
});

test('a checkpoint is compact JSON: one packed row per device', () => {
  const mid = harness();
  mid.feed(0, Math.floor(LINES.length / 2));
  const snapshot = mid.router.snapshot();
  const text = JSON.stringify(snapshot);
  const power = snapshot.streams.find((s) => s.stream === 'power')!;
  assert.equal(power.version, 3);
  assert.equal(power.keys.length, 8);
  assert.ok(power.keys.every((row) => typeof row[2] === 'string' && row.length === 3), 'each meter is [key, site, packed numbers]');
  const perDevice = text.length / (8 + 2);
  assert.ok(perDevice < 16_000, `about ${Math.round(perDevice)} characters per device`);
});

function refusal(run: () => void): GpError {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof GpError, `expected a GpError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected the checkpoint to be refused');
}

function powerEngine(schema: StreamSchema = SCHEMAS[0]!, partitions = 4): StreamEngine {
  return new StreamEngine({ schema, detectors: createDetectors(schema), partitions, createFindingHandler: (emit) => createAlertManager({ policy: schema.alerts, emit }), outputs: {} });
}

test('a damaged or mismatched checkpoint is refused with a message saying what does not fit, and changes nothing', () => {
  const source = harness();
  source.feed(0, 6_000);
  const good = JSON.stringify(source.engines[0]!.snapshot());
  const edited = (edit: (s: EngineSnapshot) => void): unknown => {
    const copy = JSON.parse(good) as EngineSnapshot;
    edit(copy);
    return copy;
  };
  const engine = powerEngine();

  let error = refusal(() => engine.restore(edited((s) => ((s as { version: number }).version = 4))));
  assert.equal(error.code, 'GP_INPUT_INVALID');
  assert.match(error.message, /version 4 is not supported; this gridpulse reads version 3/);
  // Version 1 kept a device profile's numbers in another order, as many of them: only the version tells.
  error = refusal(() => engine.restore(edited((s) => ((s as { version: number }).version = 1))));
  assert.match(error.message, /version 1 is not supported \(it was written by an earlier gridpulse\); this gridpulse reads version 3/);
  // Version 2 held a device's windows as panes.
  error = refusal(() => engine.restore(edited((s) => ((s as { version: number }).version = 2))));
  assert.match(error.message, /version 2 is not supported \(it was written by an earlier gridpulse\); this gridpulse reads version 3/);

  error = refusal(() => powerEngine(SCHEMAS[1]).restore(JSON.parse(good)));
  assert.match(error.message, /checkpoint is of stream "power", this engine runs stream "machines"/);

  const fewerMetrics = { ...SCHEMAS[0]!, metrics: SCHEMAS[0]!.metrics.slice(0, 3), metricIndex: { usageKw: 0, voltage: 1, current: 2 }, detectors: [] };
  error = refusal(() => new StreamEngine({ schema: fewerMetrics, detectors: [], outputs: {} }).restore(JSON.parse(good)));
  assert.match(error.message, /its metrics are \[usageKw, voltage, current, pf\], the engine's are \[usageKw, voltage, current\]/);

  const otherWindows = { ...SCHEMAS[0]!, windows: SCHEMAS[0]!.windows.slice(1) };
  error = refusal(() => powerEngine(otherWindows).restore(JSON.parse(good)));
  assert.match(error.message, /its windows are \[1m=60000\/60000, .*\], the engine's are \[5m=300000\/300000/);

  error = refusal(() => powerEngine(SCHEMAS[0], 2).restore(JSON.parse(good)));
  assert.match(error.message, /its partitions are \[4\], the engine's are \[2\]/);

  const noSpike = { ...SCHEMAS[0]!, detectors: SCHEMAS[0]!.detectors.filter((d) => d.type !== 'spike') };
  error = refusal(() => powerEngine(noSpike).restore(JSON.parse(good)));
  assert.match(error.message, /its detectors are \[spike\/spike\/usageKw, /);

  error = refusal(() => engine.restore(edited((s) => (s.keys[0]![2] = s.keys[0]![2].slice(0, 40)))));
  assert.match(error.message, /\/keys\/0\/2: expected the packed numbers of a device, got "ended early"/);

  error = refusal(() => engine.restore(edited((s) => (s.keys[1]![2] = `!!${s.keys[1]![2]}`))));
  assert.match(error.message, /\/keys\/1\/2/);

  error = refusal(() => engine.restore(edited((s) => (s.partitions[0]!.dirty = [999]))));
  assert.match(error.message, /\/partitions\/0\/dirty\/0: expected an integer from 0 to 7, got 999/);

  error = refusal(() => engine.restore(edited((s) => (s.partitions[1]!.handler = { version: 1, tracks: [{ phase: 'open' }] }))));
  assert.match(error.message, /alert manager checkpoint \/tracks\/0\/alert: expected an object/);

  error = refusal(() => engine.restore('{"version":1}'));
  assert.match(error.message, /expected an engine checkpoint object/);

  // Every refusal left the engine fresh: the good checkpoint still goes in, and the engine resumes.
  engine.restore(JSON.parse(good));
  assert.equal(engine.keyCount, 8);
  assert.equal(engine.watermark, source.engines[0]!.watermark);

  error = refusal(() => engine.restore(JSON.parse(good)));
  assert.equal(error.code, 'GP_INTERNAL');
  assert.match(error.message, /restore needs a freshly constructed engine/);
});

test('a router restores all its streams or none', () => {
  const source = harness();
  source.feed(0, 3_000);
  const good = JSON.stringify(source.router.snapshot());
  const target = harness();

  const onlyPower = JSON.parse(good) as { streams: EngineSnapshot[] };
  onlyPower.streams = onlyPower.streams.filter((s) => s.stream === 'power');
  let error = refusal(() => target.router.restore(onlyPower));
  assert.match(error.message, /router checkpoint \/streams: expected the streams power, machines, got "power"/);

  // The machines checkpoint is damaged: the power engine (checked first) must not be restored either.
  const badMachines = JSON.parse(good) as { streams: EngineSnapshot[] };
  badMachines.streams[1]!.stream = 'machines';
  badMachines.streams[1]!.partitions[0]!.handler = { version: 7, tracks: [] };
  error = refusal(() => target.router.restore(badMachines));
  assert.match(error.message, /alert manager checkpoint \/version/);
  assert.equal(target.engines[0]!.keyCount, 0);
  assert.equal(target.managers.reduce((n, m) => n + m.openAlerts().length, 0), 0);

  target.router.restore(JSON.parse(good));
  assert.equal(JSON.stringify(target.router.snapshot()), good);
});

test('timers of evicted devices, learned intervals and id deduplication survive a checkpoint', () => {
  // A hand-built stream with reading ids, a tiny state TTL (devices are evicted while their
  // silence timers are queued) and learned intervals.
  const schema = testSchema({
    idField: 'id',
    state: { ttlMs: 30 * 60_000, maxKeysPerPartition: 3 },
    detectors: [{ type: 'silence', metrics: [], params: {}, alertType: undefined, enabled: true }],
  });
  const T0 = Date.UTC(2025, 0, 6);
  const lines: string[] = [];
  for (let i = 0; i < 400; i++) {
    for (const m of ['m-1', 'm-2', 'm-3', 'm-4', 'm-5']) {
      if (m === 'm-3' && i > 50 && i < 200) continue; // silent, then evicted (TTL), then back
      const time = T0 + i * 30_000 + Number(m.slice(2)) * 1000;
      lines.push(JSON.stringify({ meterId: m, siteId: 's-1', id: `${m}-${i}`, timestamp: time, usageKw: 1 + (i % 5) }));
      if (i % 37 === 0) lines.push(JSON.stringify({ meterId: m, siteId: 's-1', id: `${m}-${i}`, timestamp: time - 1, usageKw: 9 }));
    }
  }
  const start = (out: string[], checkpoint?: string): { engine: StreamEngine; feed(from: number, to: number, afterLine?: (line: number) => void): void } => {
    const engine = new StreamEngine({
      schema,
      detectors: createDetectors(schema),
      partitions: 2,
      createFindingHandler: (emit) => createAlertManager({ policy: schema.alerts, emit }),
      auditIntervalMs: 5 * 60_000,
      outputs: { aggregate: (a) => out.push(serialize(a)), alert: (a) => out.push(serialize(a)), ops: (o) => out.push(serialize(o)), audit: (a) => out.push(serialize(a)) },
    });
    if (checkpoint !== undefined) engine.restore(JSON.parse(checkpoint));
    const router = new StreamRouter([engine]);
    return {
      engine,
      feed(from, to, afterLine) {
        for (let i = from; i < to; i++) {
          router.processText(lines[i]!, i + 1);
          afterLine?.(i + 1);
        }
      },
    };
  };
  const whole: string[] = [];
  const uninterrupted = start(whole);
  // The first moment an evicted device's timer is still queued (it holds a place in the heap, which audits count).
  let orphanLine = 0;
  const audits: string[] = [];
  uninterrupted.feed(0, lines.length, (line) => {
    audits[line] = serialize(uninterrupted.engine.snapshotAudit());
    if (orphanLine === 0 && uninterrupted.engine.snapshot().partitions.some((p) => p.timers.some((v, i) => i % 4 === 2 && v === -1))) orphanLine = line;
  });
  uninterrupted.engine.finish();
  assert.ok(uninterrupted.engine.stats.evicted > 0 && uninterrupted.engine.stats.duplicates > 0, 'devices were evicted and duplicates refused');
  assert.ok(orphanLine > 0, 'an evicted device had a timer queued');
  // The copy of a reading (same id, a millisecond earlier) that follows it: only the id tells it is a duplicate.
  const copyLine = lines.findIndex((line, i) => i > 500 && line.includes('"usageKw":9'));
  for (const cut of [260, orphanLine, copyLine]) {
    const parts: string[] = [];
    const first = start(parts);
    first.feed(0, cut);
    const second = start(parts, JSON.stringify(first.engine.snapshot()));
    assert.equal(serialize(second.engine.snapshotAudit()), audits[cut], `audit right after the restore at ${cut}`);
    second.feed(cut, lines.length);
    second.engine.finish();
    assert.deepEqual(parts, whole, `cut at ${cut}`);
  }
});

test('detector states come back exactly: odd numbers, typed arrays, and states that do not fit their template', () => {
  const ODD = [0, -0, Number.NaN, Infinity, -Infinity, 239, 240, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 2 ** 48 - 1, 2 ** 48, 2 ** 53 + 2, -1, -(2 ** 32) + 1, -(2 ** 32), 0.1, -1e-300, 5e-324, 1.7976931348623157e308];
  const show = (value: unknown): string => JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' ? (Object.is(v, -0) ? '-0' : String(v)) : v instanceof Float64Array ? ['f64', ...Array.from(v, (x) => (Object.is(x, -0) ? '-0' : String(x)))] : v));
  type Packed = { n: number; list: number[]; block: Float64Array; nested: { x: number } };
  type Loose = { label: string; grows: number[] };
  /** Reports its whole state on every reading, then changes it: the outputs show any difference. */
  const packed: Detector<Packed> = {
    type: 'probe',
    alertType: 'probe',
    metric: undefined,
    createState: () => ({ n: 0, list: [0, 0], block: new Float64Array(3), nested: { x: 0 } }),
    onReading(state, reading, ctx) {
      ctx.report({ time: reading.time, score: 0, value: 0, explain: show(state) });
      const k = state.n++;
      state.list[k % 2] = ODD[k % ODD.length]!;
      state.block[k % 3] = ODD[(k * 7) % ODD.length]!;
      state.nested.x = ODD[(k * 5) % ODD.length]!;
      if (k === 9) state.list.push(42); // from now on this device's state no longer fits the template
      return 0;
    },
  };
  const loose: Detector<Loose> = {
    type: 'probe2',
    alertType: 'probe2',
    metric: undefined,
    createState: () => ({ label: 'start', grows: [] }),
    onReading(state, reading, ctx) {
      ctx.report({ time: reading.time, score: 0, value: 0, explain: show(state) });
      state.label = `after ${reading.time}`;
      state.grows.push(ODD[state.grows.length % ODD.length]!);
      return 0;
    },
  };
  const schema = testSchema();
  const T0 = Date.UTC(2025, 0, 6);
  const lines = Array.from({ length: 60 }, (_, i) => JSON.stringify({ meterId: `m-${i % 3}`, timestamp: T0 + i * 20_000, usageKw: i }));
  const make = (out: string[]) => new StreamEngine({ schema, detectors: [packed, loose] as Detector[], partitions: 1, outputs: { finding: (f) => out.push(f.explain) } });
  const whole: string[] = [];
  const one = make(whole);
  const router = new StreamRouter([one]);
  lines.forEach((line, i) => router.processText(line, i + 1));
  for (const cut of [15, 40]) {
    const parts: string[] = [];
    const first = make(parts);
    const firstRouter = new StreamRouter([first]);
    lines.slice(0, cut).forEach((line, i) => firstRouter.processText(line, i + 1));
    const snapshot = JSON.parse(JSON.stringify(first.snapshot())) as EngineSnapshot;
    assert.deepEqual(snapshot.layout.detectorSizes, [7, -1], 'the probe packs 7 numbers; a state with text is kept as JSON');
    assert.equal(snapshot.keys.every((row) => row[4]?.['0'] !== undefined), cut === 40, 'a state that outgrew its template is kept as JSON');
    const second = make(parts);
    second.restore(snapshot);
    const secondRouter = new StreamRouter([second]);
    lines.slice(cut).forEach((line, i) => secondRouter.processText(line, cut + i + 1));
    assert.deepEqual(parts, whole, `cut at ${cut}`);
  }
});
