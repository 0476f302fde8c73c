// The Log conformance suite (test/helpers/log-conformance.ts) on the embedded file log.
import { after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFileLog } from '../../src/log/index.js';
import { logConformance, PARTITIONS } from '../helpers/log-conformance.js';

const root = mkdtempSync(join(tmpdir(), 'gp-log-conformance-'));
after(() => rmSync(root, { recursive: true, force: true }));

logConformance({
  name: 'file log',
  open: (name) => {
    const dir = join(root, name);
    return Promise.resolve({ log: createFileLog({ dir, partitions: PARTITIONS }), reopen: () => createFileLog({ dir, partitions: PARTITIONS }) });
  },
});
