// The Store conformance suite (test/helpers/store-conformance.ts) on the embedded DuckDB store.
import { createDuckDbStore } from '../../src/stores/index.js';
import { storeConformance } from '../helpers/store-conformance.js';

storeConformance({
  name: 'DuckDB (memory)',
  open: ({ retention }) => Promise.resolve({ store: createDuckDbStore(retention === undefined ? { path: ':memory:' } : { path: ':memory:', retention }) }),
  concurrentWritersSkip: 'DuckDB: one writing process per file by design (the store is the file’s only writer)',
});
