import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIssues, parseConfig, type ConfigIssue } from '../../src/config/index.js';

/** The one issue at `path`, failing the test when there is none or more than one. */
function issueAt(issues: readonly ConfigIssue[], path: string): ConfigIssue {
  const found = issues.filter((issue) => issue.path === path);
  assert.equal(found.length, 1, `one issue at ${path}; got:\n${formatIssues(issues)}`);
  return found[0] as ConfigIssue;
}

test('a value of the wrong type is reported at its path with what was expected and what was got', () => {
  const { config, issues } = parseConfig({ engine: { partitions: 'four' }, store: { writeReadings: 'yes' } });
  assert.equal(config, undefined);
  assert.equal(issueAt(issues, '/engine/partitions').message, 'expected a whole number from 1 to 1024, got "four"');
  assert.equal(issueAt(issues, '/store/writeReadings').message, 'expected true or false, got "yes"');
  assert.equal(issues.length, 2);
});

test('a wrong value deep inside a stream is reported where it is, not at the stream', () => {
  const { issues } = parseConfig({ streams: { power: { time: { field: 'ts', format: 'unix' }, metrics: { pf: { max: 'one' } } } } });
  assert.equal(issueAt(issues, '/streams/power/time/format').message, 'expected one of auto, epoch-ms, epoch-s, iso, got "unix"');
  assert.equal(issueAt(issues, '/streams/power/metrics/pf/max').message, 'expected a number, got "one"');
});

test('a duration that does not parse is reported at its path', () => {
  const { issues } = parseConfig('streams:\n  power:\n    lateness:\n      allowed: ten minutes\n', { source: 'gridpulse.yaml' });
  const issue = issueAt(issues, '/streams/power/lateness/allowed');
  assert.match(issue.message, /^expected a duration like "10m".*, got "ten minutes"$/);
  assert.equal(issue.location, 'gridpulse.yaml:4:16');
  assert.equal(issues.length, 1);
});

test('durations that must be positive reject zero, and retention durations are checked too', () => {
  const { issues } = parseConfig({ store: { retention: { ops: '0s', readings: 'forever' } }, streams: { machines: { state: { ttl: 0 } } } });
  assert.equal(issueAt(issues, '/store/retention/ops').message, 'expected a duration greater than zero, got "0s"');
  assert.match(issueAt(issues, '/store/retention/readings').message, /^expected a duration .*, got "forever"$/);
  assert.equal(issueAt(issues, '/streams/machines/state/ttl').message, 'expected a duration greater than zero, got 0');
});

test('an unknown key is reported at its path with the keys that are allowed and a suggestion', () => {
  const { issues } = parseConfig({ streams: { power: { lateness: { alowed: '5m' } } }, stores: {} });
  assert.equal(
    issueAt(issues, '/streams/power/lateness/alowed').message,
    'expected one of the keys outOfOrder, allowed, reportOutOfOrderOver, maxFuture, idleTimeout, got unknown key "alowed" (did you mean "allowed"?)',
  );
  assert.equal(issueAt(issues, '/stores').message, 'expected one of the keys engine, store, dataDir, streams, server, mqtt, log, checkpoint, simulator, features, got unknown key "stores" (did you mean "store"?)');
});

test('a detector naming a metric the stream does not have is reported at that metric', () => {
  const { issues } = parseConfig({
    streams: { power: { detectors: [{ type: 'spike', metrics: ['usageKw'] }, { type: 'drop' }, { type: 'zscore', metrics: ['usageKw', 'usage_kw'] }] } },
  });
  assert.equal(
    issueAt(issues, '/streams/power/detectors/2/metrics/1').message,
    'expected a metric of stream "power" (usageKw, voltage, current, pf), got "usage_kw" (did you mean "usageKw"?)',
  );
  assert.equal(issues.length, 1);
});

test('replacing a built-in stream\'s metrics without its detectors is reported once at the detectors', () => {
  const { issues } = parseConfig({ streams: { power: { metrics: ['kw'] } } });
  assert.deepEqual(issues, [
    {
      path: '/streams/power/detectors',
      message: 'expected detectors that use only metrics of stream "power" (kw), got the default detectors, which use "usageKw"; list this stream\'s detectors',
    },
  ]);
});

test('bad windows are reported at the window: size not a multiple of the slide, zero, repeated, unreadable', () => {
  const { issues } = parseConfig({
    streams: { machines: { windows: ['1m', { size: '1m', slide: '40s' }, '60s', '0s', '5m/x', { size: '5m', slide: '1m' }] } },
  });
  assert.equal(
    issueAt(issues, '/streams/machines/windows/1').message,
    'expected a window size that is a whole multiple of its slide, got size 1m and slide 40s',
  );
  assert.equal(issueAt(issues, '/streams/machines/windows/2').message, 'expected each window once, got "1m" again');
  assert.equal(issueAt(issues, '/streams/machines/windows/3').message, 'expected a duration greater than zero, got "0s"');
  assert.match(issueAt(issues, '/streams/machines/windows/4').message, /^expected a duration .*, got "x"$/);
  assert.equal(issues.length, 4);
});

test('a new stream needs a key and at least one metric; metric and field names are checked', () => {
  const { issues } = parseConfig({ streams: { boilers: { time: '', metrics: { 'flow rate': {}, heat: { min: 5, max: 1 } } } } });
  assert.equal(issueAt(issues, '/streams/boilers/time').message, 'expected a non-empty field name, got ""');
  assert.equal(
    issueAt(issues, '/streams/boilers/key').message,
    'expected the name of the field holding the device id, got nothing (a new stream needs a key)',
  );
  assert.match(issueAt(issues, '/streams/boilers/metrics/flow rate').message, /^expected a metric name of letters, digits and _ .*, got "flow rate"/);
  assert.equal(issueAt(issues, '/streams/boilers/metrics/heat/max').message, 'expected max ≥ min (5), got 1');
  assert.equal(issueAt(parseConfig({ streams: { empty: { key: 'id', metrics: [] } } }).issues, '/streams/empty/metrics').message, 'expected at least one metric, got none');
});

test('a detector without a type and two detectors with one name are reported', () => {
  const { issues } = parseConfig({
    streams: { machines: { detectors: [{ type: 'rule', name: 'hot', params: { when: 'rpm > 1' } }, { type: 'rule', name: 'hot' }] } },
  });
  assert.equal(issueAt(issues, '/streams/machines/detectors/1/name').message, 'expected a name no other detector of this stream uses, got "hot" again');
  const missingType = parseConfig({ streams: { machines: { detectors: [{ metrics: [] }] } } }).issues;
  assert.equal(issueAt(missingType, '/streams/machines/detectors/0/type').message, 'expected a detector type such as spike or rule, got nothing (this key is required)');
});

test('interval-energy conflicts are reported: a second energy metric, power: true beside it', () => {
  const { issues } = parseConfig({
    streams: { meters: { key: 'id', metrics: { a: { kind: 'interval-energy' }, b: { kind: 'interval-energy' }, c: { power: true } } } },
  });
  assert.match(issueAt(issues, '/streams/meters/metrics/b/kind').message, /^expected one interval-energy metric, got a second one/);
  assert.match(issueAt(issues, '/streams/meters/metrics/c/power').message, /^expected no power: true metric beside interval-energy metric "a"/);
});

test('a YAML syntax error is reported with its line and column', () => {
  const { config, issues } = parseConfig('engine:\n  partitions: 4\nstreams: [power\n', { source: 'gridpulse.yaml' });
  assert.equal(config, undefined);
  assert.ok(issues.length >= 1);
  const first = issues[0];
  assert.equal(first?.path, '');
  assert.match(first?.message ?? '', /^YAML syntax error at line \d+, column \d+: /);
  assert.match(first?.location ?? '', /^gridpulse\.yaml:\d+:\d+$/);
  const duplicate = parseConfig('dataDir: a\ndataDir: b\n').issues;
  assert.match(duplicate[0]?.message ?? '', /^YAML syntax error at line 2, column 1: /);
});

test('a document that is not a mapping is reported at the top', () => {
  assert.deepEqual(parseConfig('- a\n- b\n').issues, [{ path: '', message: 'expected a mapping, got a list of 2', location: 'line 1, column 1' }]);
  // An empty file is the defaults.
  assert.deepEqual(parseConfig('').issues, []);
});

test('all problems of a file are reported together, each with its location', () => {
  const text = ['engine:', '  partitions: 0', 'streams:', '  power:', '    gapGrace: -1', '    lateness: { maxFuture: soon }', '    windows: [1m/7s]'].join('\n');
  const { issues } = parseConfig(text, { source: 'g.yaml' });
  assert.deepEqual(
    issues.map((issue) => `${issue.location ?? '?'} ${issue.path}`),
    ['g.yaml:2:15 /engine/partitions', 'g.yaml:5:15 /streams/power/gapGrace', 'g.yaml:6:28 /streams/power/lateness/maxFuture', 'g.yaml:7:15 /streams/power/windows/0'],
  );
  assert.equal(
    formatIssues(issues).split('\n')[0],
    '/engine/partitions: expected a whole number from 1 to 1024, got 0 (g.yaml:2:15)',
  );
});

test('validateDetector issues are added for each detector with its path', () => {
  const seen: string[] = [];
  const { issues } = parseConfig(
    { streams: { machines: { detectors: [{ type: 'zscore' }, { type: 'nonsense' }] } } },
    {
      validateDetector: (spec, schema, path) => {
        seen.push(`${schema.name}${path}`);
        return spec.type === 'nonsense' ? [{ path: `${path}/type`, message: 'expected a registered detector type, got "nonsense"' }] : [];
      },
    },
  );
  assert.ok(seen.includes('machines/streams/machines/detectors/1') && seen.includes('power/streams/power/detectors/9'));
  assert.deepEqual(issues, [{ path: '/streams/machines/detectors/1/type', message: 'expected a registered detector type, got "nonsense"' }]);
});

test('parseConfig does not change or freeze the object it was given, and never throws on odd values', () => {
  const input = { streams: { power: { detectors: [{ type: 'spike', params: { limit: 3 } }] } } };
  const { config } = parseConfig(input);
  assert.ok(config !== undefined);
  assert.ok(!Object.isFrozen(input.streams.power.detectors[0]?.params));
  assert.deepEqual(input, { streams: { power: { detectors: [{ type: 'spike', params: { limit: 3 } }] } } });
  const odd = parseConfig({ streams: { power: { detectors: [{ type: 'spike', params: { check: () => 1 } }] } } });
  assert.match(issueAt(odd.issues, '/streams/power/detectors/0/params').message, /^expected plain data/);
  assert.deepEqual(parseConfig(42).issues, [{ path: '', message: 'expected a mapping, got 42' }]);
});

test('platform sections: bad port, token hash, mqtt URL and durations are reported at their paths', () => {
  const { issues } = parseConfig({
    server: { port: 70000, auth: { tokens: [{ name: 'meter-1', sha256: 'not-a-hash' }] } },
    mqtt: { url: 'http://broker' },
    checkpoint: { interval: 'soon' },
  });
  const byPath = new Map(issues.map((i) => [i.path, i.message]));
  assert.match(byPath.get('/server/port') ?? '', /expected a port number from 0 to 65535, got 70000/);
  assert.match(byPath.get('/server/auth/tokens/0/sha256') ?? '', /64 lowercase hex digits/);
  assert.match(byPath.get('/mqtt/url') ?? '', /broker URL/);
  assert.ok(byPath.has('/checkpoint/interval'), JSON.stringify(issues));
});

test('platform sections have working defaults: open auth on 127.0.0.1:8080, per-batch fsync, simulator on', () => {
  const { config } = parseConfig({});
  assert.equal(config?.server.auth.mode, 'open');
  assert.equal(config?.server.port, 8080);
  assert.equal(config?.log.fsync, 'batch');
  assert.equal(config?.checkpoint.intervalMs, 5000);
  assert.equal(config?.simulator.enabled, true);
  assert.equal(config?.mqtt, undefined);
  const withToken = parseConfig({ server: { auth: { tokens: [{ name: 'a', sha256: 'a'.repeat(64), keys: ['m-1'] }] } } }).config;
  assert.equal(withToken?.server.auth.mode, 'tokens');
  assert.deepEqual(withToken?.server.auth.tokens[0]?.keys, ['m-1']);
});

test('features.redis is off by default; when set it takes the documented TTL, interval and key prefixes', () => {
  assert.equal(parseConfig({}).config?.features.redis, undefined);
  const { config, issues } = parseConfig('features:\n  redis:\n    url: redis://127.0.0.1:6379\n    prefixes: { machines: plant-1-machine }\n');
  assert.equal(formatIssues(issues), '');
  assert.deepEqual(config?.features.redis, { url: 'redis://127.0.0.1:6379', ttlMs: 600_000, intervalMs: 1000, prefixes: { machines: 'plant-1-machine' } });
  const set = parseConfig({ features: { redis: { url: 'rediss://cache:6380/2', ttl: '2m', interval: '250ms' } } }).config?.features.redis;
  assert.deepEqual([set?.ttlMs, set?.intervalMs], [120_000, 250]);
});

test('features.redis: a bad URL, duration, prefix or a TTL not above the interval is reported at its path', () => {
  const { issues } = parseConfig({ features: { redis: { url: 'http://cache:6379', ttl: 'soon', interval: '0s', prefixes: { machines: '' } } } });
  assert.match(issueAt(issues, '/features/redis/url').message, /^expected a Redis URL like "redis:\/\/127.0.0.1:6379", got "http:\/\/cache:6379"$/);
  assert.match(issueAt(issues, '/features/redis/ttl').message, /^expected a duration like "10m".*, got "soon"$/);
  assert.equal(issueAt(issues, '/features/redis/interval').message, 'expected a duration greater than zero, got "0s"');
  assert.match(issueAt(issues, '/features/redis/prefixes/machines').message, /key prefix/);
  const short = parseConfig({ features: { redis: { url: 'redis://127.0.0.1:6379', ttl: '1s', interval: '2s' } } });
  assert.equal(issueAt(short.issues, '/features/redis/ttl').message, 'expected a time to live longer than the interval ("2s"), got "1s"');
  assert.equal(issueAt(parseConfig({ features: { redis: {} } }).issues, '/features/redis/url').message, 'expected a Redis URL like "redis://127.0.0.1:6379", got nothing (this key is required)');
  assert.match(issueAt(parseConfig({ features: { cache: {} } }).issues, '/features/cache').message, /expected one of the keys redis/);
});
