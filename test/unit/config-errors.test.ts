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
  assert.equal(issueAt(issues, '/stores').message, 'expected one of the keys engine, store, dataDir, streams, server, mqtt, log, checkpoint, simulator, features, alerts, got unknown key "stores" (did you mean "store"?)');
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

const WEBHOOK_SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

test('alerts.delivery is empty by default and, when set, takes the documented timeout, retry policy, queue and dead-letter defaults', () => {
  assert.deepEqual(parseConfig({}).config?.alerts.delivery, {
    queueCapacity: 10_000,
    deadLetters: 'file',
    allow: { hosts: [], cidrs: [] },
    channels: [],
    routes: [],
    grouping: { enabled: true, groupWaitMs: 30_000, groupIntervalMs: 300_000, policy: { minDevices: 5, minShare: 0.5, windowMs: 120_000, types: ['silence', 'outage'] } },
  });
  const { config, issues } = parseConfig(
    [
      'alerts:',
      '  delivery:',
      '    allow: { hosts: ["*.example.com"], cidrs: ["10.20.0.0/16"] }',
      '    channels:',
      '      ops:',
      '        type: webhook',
      '        url: https://hooks.example.com/gridpulse',
      `        secret: ${WEBHOOK_SECRET}`,
      '        retry: { attempts: 3, maxDelay: 1m }',
      '      plant: { type: mqtt, url: "mqtt://127.0.0.1:1883", topic: "alerts/{site}" }',
      '    routes:',
      '      - { match: { sites: [s-1], minSeverity: warning }, channels: [ops], template: slack }',
      '      - channels: [plant]',
    ].join('\n'),
  );
  assert.equal(formatIssues(issues), '');
  const delivery = config?.alerts.delivery;
  assert.deepEqual(delivery?.channels[0], {
    type: 'webhook',
    name: 'ops',
    url: 'https://hooks.example.com/gridpulse',
    secrets: [WEBHOOK_SECRET],
    timeoutMs: 15_000,
    retry: { attempts: 3, baseDelayMs: 1000, maxDelayMs: 60_000 },
    template: 'generic',
  });
  assert.deepEqual(delivery?.channels[1], { type: 'mqtt', name: 'plant', url: 'mqtt://127.0.0.1:1883', topic: 'alerts/{site}', qos: 1, clientId: undefined, timeoutMs: 10_000, retry: { attempts: 8, baseDelayMs: 1000, maxDelayMs: 300_000 }, template: 'generic' });
  assert.deepEqual(delivery?.routes.map((route) => [route.name, route.sites, route.minSeverity, route.channels, route.template]), [
    ['route-0', ['s-1'], 'warning', ['ops'], 'slack'],
    ['route-1', undefined, undefined, ['plant'], undefined],
  ]);
  assert.deepEqual(delivery?.allow, { hosts: ['*.example.com'], cidrs: ['10.20.0.0/16'] });
});

test('alerts.delivery: bad channels, secrets, durations and allow-list entries are reported at their paths, secrets never echoed', () => {
  const { issues } = parseConfig({
    alerts: {
      delivery: {
        queueCapacity: 0,
        allow: { hosts: ['hooks example com'], cidrs: ['10.0.0.0/33', 'not-an-address'] },
        channels: {
          short: { type: 'webhook', url: 'https://hooks.example.com/x', secret: `whsec_${Buffer.alloc(8, 1).toString('base64')}` },
          plain: { type: 'webhook', url: 'https://hooks.example.com/x', secret: 'hunter2-plain-text' },
          nosecret: { type: 'webhook', url: 'ftp://files.example.com/x' },
          creds: { type: 'webhook', url: 'https://bob:pw@hooks.example.com/x', secret: WEBHOOK_SECRET, timeout: 'soon', topic: 'x' },
          slow: { type: 'webhook', url: 'https://hooks.example.com/x', secret: WEBHOOK_SECRET, retry: { baseDelay: '10s', maxDelay: '1s', attempts: 0 } },
          broker: { type: 'mqtt', url: 'http://broker', secret: WEBHOOK_SECRET },
          wild: { type: 'mqtt', url: 'mqtt://127.0.0.1', topic: 'alerts/+/x', qos: 0 },
          pager: { type: 'sms', url: 'tel:123' },
        },
      },
    },
  });
  const at = (path: string) => issueAt(issues, `/alerts/delivery${path}`).message;
  assert.equal(at('/queueCapacity'), 'expected a whole number of notifications per channel, at least 1, got 0');
  assert.match(at('/allow/hosts/0'), /^expected a host name like "hooks.example.com" or "\*.example.com", got "hooks example com"$/);
  assert.match(at('/allow/cidrs/0'), /^expected an address range like .*, got "10.0.0.0\/33"$/);
  assert.match(at('/allow/cidrs/1'), /got "not-an-address"$/);
  assert.equal(at('/channels/short/secret'), 'expected a Standard Webhooks secret like "whsec_" followed by base64 of 24 to 64 random bytes, got a secret of 8 bytes');
  assert.equal(at('/channels/plain/secret'), 'expected a Standard Webhooks secret like "whsec_" followed by base64 of 24 to 64 random bytes, got text without the "whsec_" prefix');
  assert.match(at('/channels/nosecret/secret'), /got nothing \(this key is required for webhook channels\)$/);
  assert.equal(at('/channels/nosecret/url'), 'expected an http or https URL like "https://hooks.example.com/gridpulse", got a URL with the scheme ftp');
  assert.match(at('/channels/creds/url'), /^expected a URL without a user name or password .*, got credentials in the URL for hooks.example.com$/);
  assert.match(at('/channels/creds/timeout'), /^expected a duration like "10m".*, got "soon"$/);
  assert.equal(at('/channels/creds/topic'), 'expected no topic for a webhook channel (topic belongs to mqtt and kafka channels), got "x"');
  assert.equal(at('/channels/slow/retry/attempts'), 'expected a whole number of attempts, at least 1, got 0');
  assert.equal(at('/channels/broker/url'), 'expected a broker URL like "mqtt://127.0.0.1:1883", got "http://broker"');
  assert.equal(at('/channels/broker/secret'), 'expected no secret for an mqtt channel (secret belongs to webhook channels), got a value');
  assert.match(at('/channels/broker/topic'), /got nothing \(this key is required for mqtt channels\)$/);
  assert.equal(at('/channels/wild/qos'), 'expected 1 or 2, got 0');
  assert.equal(at('/channels/pager/type'), 'expected webhook, mqtt or kafka, got "sms"');
  assert.ok(!issues.some((issue) => issue.path.startsWith('/alerts/delivery/channels/pager/') && issue.path !== '/alerts/delivery/channels/pager/type'), 'a channel of unknown type gets one issue, not guesses');
  const text = formatIssues(issues);
  assert.ok(!text.includes('hunter2') && !text.includes(WEBHOOK_SECRET) && !text.includes(':pw@'), 'no secret or password appears in any message');

  const slow = parseConfig({ alerts: { delivery: { channels: { slow: { type: 'webhook', url: 'https://hooks.example.com/x', secret: WEBHOOK_SECRET, retry: { baseDelay: '10s', maxDelay: '1s' } } } } } });
  assert.equal(issueAt(slow.issues, '/alerts/delivery/channels/slow/retry/maxDelay').message, 'expected a maximum delay no shorter than the base delay ("10s"), got "1s"');
  const named = parseConfig({ alerts: { delivery: { channels: { 'ops team': { type: 'webhook', url: 'https://hooks.example.com/x', secret: WEBHOOK_SECRET } } } } });
  assert.match(issueAt(named.issues, '/alerts/delivery/channels/ops team').message, /^expected a channel name of letters, digits, .*, got "ops team"$/);
  const wild = parseConfig({ alerts: { delivery: { channels: { wild: { type: 'mqtt', url: 'mqtt://127.0.0.1', topic: 'alerts/+/x' } } } } });
  assert.equal(issueAt(wild.issues, '/alerts/delivery/channels/wild/topic').message, 'expected a topic to publish to, without the wildcards + and #, got "alerts/+/x"');
});

test('alerts.delivery: a route naming an unknown channel, or a bad match, is reported where it is', () => {
  const channels = { ops: { type: 'webhook', url: 'https://hooks.example.com/x', secret: WEBHOOK_SECRET } };
  const unknown = parseConfig({ alerts: { delivery: { channels, routes: [{ channels: ['ops', 'opps'] }] } } });
  assert.deepEqual(unknown.issues, [{ path: '/alerts/delivery/routes/0/channels/1', message: 'expected a channel of alerts.delivery.channels (ops), got "opps"' }]);
  const bad = parseConfig({ alerts: { delivery: { channels, routes: [{ channels: [], match: { severities: ['high'], minSeverity: 'loud', site: ['s-1'] } }] } } });
  assert.equal(issueAt(bad.issues, '/alerts/delivery/routes/0/channels').message, 'expected a list of at least one channel name, got an empty list');
  assert.equal(issueAt(bad.issues, '/alerts/delivery/routes/0/match/severities/0').message, 'expected info, warning or critical, got "high"');
  assert.equal(issueAt(bad.issues, '/alerts/delivery/routes/0/match/minSeverity').message, 'expected info, warning or critical, got "loud"');
  assert.match(issueAt(bad.issues, '/alerts/delivery/routes/0/match/site').message, /got unknown key "site" \(did you mean "sites"\?\)$/);
  assert.match(issueAt(parseConfig({ alerts: { deliver: {} } }).issues, '/alerts/deliver').message, /expected one of the keys delivery, maintenance, incidents, got unknown key "deliver" \(did you mean "delivery"\?\)/);
});

test('alerts.maintenance: times that do not parse and a window that ends before it starts are reported at their paths', () => {
  const { issues } = parseConfig({
    alerts: {
      maintenance: [
        { sites: ['s-1'], from: 'tonight', to: '2025-11-24T04:00:00Z', reason: 'x' },
        { keys: ['m-1'], from: '2025-11-24T04:00:00Z', to: '2025-11-24T02:00:00Z' },
      ],
    },
  });
  assert.equal(issueAt(issues, '/alerts/maintenance/0/from').message, 'expected a time like "2025-11-24T02:00:00Z" or epoch milliseconds, got "tonight"');
  assert.equal(issueAt(issues, '/alerts/maintenance/1/to').message, 'expected a time after from ("2025-11-24T04:00:00Z"), got "2025-11-24T02:00:00Z"');
  assert.equal(issues.length, 2);
});

test('alert lifecycle settings: flapping flips, escalation severity and durations, incidents share are reported at their paths', () => {
  const { issues } = parseConfig({
    streams: { power: { alerts: { flapping: { flips: 0, window: '1h' }, escalation: [{ after: '15m', to: 'urgent' }] } } },
    alerts: { incidents: { minShare: 1.5 } },
  });
  assert.equal(issueAt(issues, '/streams/power/alerts/flapping/flips').message, 'expected a whole number of flips, at least 1, got 0');
  assert.equal(issueAt(issues, '/streams/power/alerts/escalation/0/to').message, 'expected one of info, warning, critical, got "urgent"');
  const durations = parseConfig({ streams: { power: { alerts: { escalation: [{ after: '5m', to: 'warning' }, { after: 'soon', to: 'critical' }] } } } }).issues;
  assert.match(issueAt(durations, '/streams/power/alerts/escalation/1/after').message, /^expected a duration like "10m".*, got "soon"$/);
  assert.match(issueAt(issues, '/alerts/incidents/minShare').message, /^expected a share of the site's devices above 0 and at most 1, like 0.5, got 1.5$/);
});
