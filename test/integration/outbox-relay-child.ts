// A relay in a process of its own, for the crash tests of outbox-logical.test.ts (not a test file).
// Usage: node --import tsx outbox-relay-child.ts <url> <schema> <consumer file> <hang at>
// Appends every notification it is handed to the consumer file (`id attempt`, one line, written
// before `deliver` resolves: the receiver has it), and on the <hang at>-th one of this run never
// resolves `deliver`, prints HANG <id> and waits to be killed: a crash mid-delivery, after the
// receiver got the row and before the relay could mark it or confirm its LSN.
import { appendFileSync } from 'node:fs';
import { createOutboxRelay } from '../../src/stores/index.js';

const [url, schema, consumerFile, hangAtText] = process.argv.slice(2);
if (url === undefined || schema === undefined || consumerFile === undefined || hangAtText === undefined) {
  console.error('usage: outbox-relay-child.ts <url> <schema> <consumer file> <hang at>');
  process.exit(2);
}
const hangAt = Number(hangAtText);
let count = 0;
const relay = createOutboxRelay({
  url,
  schema,
  mode: 'logical',
  heartbeatMs: 200,
  retryMinMs: 50,
  retryMaxMs: 500,
  deliver: (notification) => {
    appendFileSync(consumerFile, `${notification.id} ${notification.attempt}\n`);
    count += 1;
    if (count === hangAt) {
      process.stdout.write(`HANG ${notification.id}\n`);
      return new Promise<void>(() => undefined);
    }
    return Promise.resolve();
  },
  onError: (error) => process.stderr.write(`relay: ${error.message}\n`),
});
const started = await relay.start();
process.stdout.write(`STARTED ${started.mode}\n`);
