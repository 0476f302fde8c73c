// The webhook allow-list: internal addresses are refused unless allowed explicitly, DNS names are
// resolved and every answer checked, and the request goes to the address that was checked.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAlertRouter, createDeliveryWorker, createTargetPolicy, createWebhookChannel, type HostResolver } from '../../src/alerts/index.js';
import { GpError } from '../../src/model/index.js';
import { SECRET, alertEvents, signatureVerifies, startReceiver, testTime, type Receiver } from './alerts-delivery-harness.js';

const receivers: Receiver[] = [];
after(() => Promise.all(receivers.map((receiver) => receiver.close())));

test('by default loopback, private, link-local, unique-local and metadata addresses are refused, public ones allowed', () => {
  const policy = createTargetPolicy();
  const refused = ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fd00::1', 'fe80::1', 'fd00:ec2::254', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe', '64:ff9b::a00:1', '2002:c0a8:101::1', '224.0.0.1'];
  for (const address of refused) assert.notEqual(policy.refuseAddress(address), undefined, `${address} must be refused`);
  for (const address of ['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) assert.equal(policy.refuseAddress(address), undefined, `${address} must be allowed`);
  assert.match(policy.refuseAddress('169.254.169.254') ?? '', /cloud metadata address/);
  assert.match(policy.refuseAddress('::ffff:10.0.0.1') ?? '', /IPv4 10\.0\.0\.1\) is in a private range \(10\.0\.0\.0\/8\)/);
});

test('allowed CIDRs open internal ranges, but a metadata address only when listed as a single address', () => {
  const wide = createTargetPolicy({ allowedCidrs: ['127.0.0.0/8', '169.254.0.0/16', 'fd12:3456::/32'] });
  assert.equal(wide.refuseAddress('127.0.0.5'), undefined);
  assert.equal(wide.refuseAddress('::ffff:127.0.0.5'), undefined, 'the IPv4-mapped form of an allowed address');
  assert.equal(wide.refuseAddress('fd12:3456::9'), undefined);
  assert.notEqual(wide.refuseAddress('fd12:3457::9'), undefined);
  assert.equal(wide.refuseAddress('169.254.1.1'), undefined);
  assert.match(wide.refuseAddress('169.254.169.254') ?? '', /cloud metadata/);
  assert.equal(createTargetPolicy({ allowedCidrs: ['169.254.169.254/32'] }).refuseAddress('169.254.169.254'), undefined);
  assert.throws(() => createTargetPolicy({ allowedCidrs: ['10.0.0.0/40'] }), (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_INVALID');
});

test('a webhook URL with a refused literal address or host is refused when the channel is made, without its path', () => {
  const make = (url: string, allowedHosts: string[] = []) => () =>
    createWebhookChannel({ name: 'hook', url, secrets: [SECRET], policy: createTargetPolicy({ allowedHosts }) });
  for (const url of ['http://127.0.0.1:8080/x?token=abc', 'http://[::1]/x?token=abc', 'http://169.254.169.254/latest/meta-data?token=abc', 'http://0x7f.1/x?token=abc', 'http://[::ffff:7f00:1]/x?token=abc']) {
    assert.throws(make(url), (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_INVALID' && !error.message.includes('token=abc'), url);
  }
  assert.throws(make('https://evil.example.org/x', ['hooks.example.com', '*.corp.example']), /the host evil\.example\.org is not in alerts\.delivery\.allow\.hosts/);
  assert.doesNotThrow(make('https://hooks.example.com/x', ['hooks.example.com', '*.corp.example']));
  assert.doesNotThrow(make('https://a.b.corp.example/x', ['*.corp.example']));
  assert.throws(make('https://corp.example/x', ['*.corp.example']), /not in alerts\.delivery\.allow\.hosts/);
  assert.throws(make('https://badcorp.example/x', ['*.corp.example']), /not in alerts\.delivery\.allow\.hosts/);
  assert.throws(make('ftp://hooks.example.com/x'), /scheme ftp/);
});

/** A worker with one webhook channel to `url`, its names resolved by `resolve`, loopback allowed. */
function setup(url: string, resolve: HostResolver) {
  const { clock, sleep } = testTime();
  const channel = createWebhookChannel({
    name: 'hook',
    url,
    secrets: [SECRET],
    policy: createTargetPolicy({ allowedCidrs: ['127.0.0.0/8'], resolve }),
    retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
    clock,
  });
  return createDeliveryWorker({ channels: [channel], router: createAlertRouter([{ channels: ['hook'] }]), clock, sleep });
}

test('a host name is resolved by the policy and the request goes to the checked address, with the name in Host', async () => {
  const hooks = await startReceiver();
  receivers.push(hooks);
  const asked: string[] = [];
  // receiver.gridpulse.test exists only in this resolver: reaching the receiver proves the checked address was used.
  const worker = setup(`http://receiver.gridpulse.test:${hooks.port}/hook`, (name) => {
    asked.push(name);
    return Promise.resolve([{ address: '127.0.0.1', family: 4 }]);
  });
  const [event] = alertEvents(1);
  assert.ok(event);
  worker.submit(event);
  await worker.idle();
  assert.equal(hooks.requests.length, 1);
  assert.equal(hooks.requests[0]?.headers.host, `receiver.gridpulse.test:${hooks.port}`);
  assert.ok(signatureVerifies(SECRET, hooks.requests[0]?.headers ?? {}, hooks.requests[0]?.body ?? ''));
  assert.deepEqual(asked, ['receiver.gridpulse.test']);
  assert.equal(worker.metrics().hook?.delivered, 1);
  await worker.close();
});

test('a name that resolves to a refused address is never called: the notification is dead-lettered with the reason', async () => {
  const hooks = await startReceiver(() => ({ status: 500 }));
  receivers.push(hooks);
  // DNS rebinding: the first answer is allowed, the next one points at the metadata service.
  const answers = ['127.0.0.1', '169.254.169.254'];
  let call = 0;
  const worker = setup(`http://rebind.gridpulse.test:${hooks.port}/hook`, () => Promise.resolve([{ address: answers[Math.min(call++, 1)] ?? '', family: 4 }]));
  const [event] = alertEvents(1);
  assert.ok(event);
  worker.submit(event);
  await worker.idle();
  assert.equal(hooks.requests.length, 1, 'only the attempt whose answer was allowed reached a server');
  const [dead] = await worker.listDeadLetters();
  assert.equal(dead?.attempts, 2);
  assert.match(dead?.reason ?? '', /^target refused: rebind\.gridpulse\.test resolves to 169\.254\.169\.254 is a cloud metadata address$/);
  await worker.close();

  const mixed = setup('http://mixed.gridpulse.test/hook', () => Promise.resolve([{ address: '127.0.0.1', family: 4 }, { address: '10.0.0.7', family: 4 }]));
  mixed.submit(event);
  await mixed.idle();
  assert.match((await mixed.listDeadLetters())[0]?.reason ?? '', /resolves to 10\.0\.0\.7 is in a private range/, 'every answer must be allowed');
  await mixed.close();
});

test('a name that does not resolve is retried (DNS may come back), then dead-lettered', async () => {
  const worker = setup('http://nowhere.gridpulse.test/hook', () => Promise.reject(new Error('getaddrinfo ENOTFOUND nowhere.gridpulse.test')));
  const [event] = alertEvents(1);
  assert.ok(event);
  worker.submit(event);
  await worker.idle();
  const [dead] = await worker.listDeadLetters();
  assert.equal(dead?.attempts, 3);
  assert.match(dead?.reason ?? '', /^gave up after 3 attempts: cannot resolve nowhere\.gridpulse\.test: getaddrinfo ENOTFOUND/);
  assert.equal(worker.metrics().hook?.retried, 2);
  await worker.close();
});
