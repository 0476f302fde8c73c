// A relay in a process of its own, for the crash tests of outbox-logical.test.ts and the crash
// harness scripts/outbox-crash.ts (not a test file).
// Usage: node --import tsx outbox-relay-child.ts <url> <schema> <consumer file> <hang at> [--fsync] [--heartbeat-ms N]
// Appends every notification it is handed to the consumer file (`id attempt`, one line, written
// with one write(2) before `deliver` resolves: the receiver has it, whenever the process dies), and
// on the <hang at>-th one of this run never resolves `deliver`, prints HANG <id> and waits to be
// killed: a crash mid-delivery, after the receiver got the row and before the relay could mark it or
// confirm its LSN. <hang at> 0: never hang (the harness kills it at moments of its own choosing).
// --fsync: fdatasync each line before `deliver` resolves (a receiver that survives a machine crash).
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import { createOutboxRelay, type OutboxRelayOptions } from '../../src/stores/index.js';

const [url, schema, consumerFile, hangAtText, ...flags] = process.argv.slice(2);
const hangAt = Number(hangAtText);
const heartbeatAt = flags.indexOf('--heartbeat-ms');
const heartbeatMs = heartbeatAt >= 0 ? Number(flags[heartbeatAt + 1]) : 200;
if (url === undefined || schema === undefined || consumerFile === undefined || !Number.isInteger(hangAt) || hangAt < 0 || !Number.isInteger(heartbeatMs) || heartbeatMs < 1) {
  console.error('usage: outbox-relay-child.ts <url> <schema> <consumer file> <hang at (0: never)> [--fsync] [--heartbeat-ms N]');
  process.exit(2);
}
const fsync = flags.includes('--fsync');
const sink = openSync(consumerFile, 'a');
process.on('exit', () => closeSync(sink));
let count = 0;
const options: OutboxRelayOptions = {
  url,
  schema,
  mode: 'logical',
  heartbeatMs,
  retryMinMs: 50,
  retryMaxMs: 500,
  deliver: (notification) => {
    writeSync(sink, `${notification.id} ${notification.attempt}\n`);
    if (fsync) fdatasyncSync(sink);
    count += 1;
    if (count === hangAt) {
      process.stdout.write(`HANG ${notification.id}\n`);
      return new Promise<void>(() => undefined);
    }
    return Promise.resolve();
  },
  onError: (error) => process.stderr.write(`relay: ${error.message}\n`),
};
// A server that is down or still recovering refuses the start: try again with a new relay (a relay
// whose start failed does not start again), as a supervisor restarting the process would.
for (let attempt = 1; ; attempt++) {
  const relay = createOutboxRelay(options);
  try {
    const started = await relay.start();
    process.stdout.write(`STARTED ${started.mode}\n`);
    break;
  } catch (error) {
    await relay.stop();
    process.stderr.write(`relay: start attempt ${attempt} failed: ${(error as Error).message}\n`);
    if (attempt >= 300) process.exit(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
