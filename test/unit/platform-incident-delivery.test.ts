// Site incidents in the live platform on the embedded store: a simulated outage of 50 meters gives
// one incident page linking the 50 alerts, not 50 pages (scenario in test/helpers/site-outage.ts).
import { test } from 'node:test';
import { siteOutageScenario } from '../helpers/site-outage.js';

void test('a site outage of 50 meters reaches the webhook as one incident page linking 50 alerts; a lone silent meter elsewhere gets its own page', { timeout: 180_000 }, async () => {
  await siteOutageScenario('duckdb::memory:');
});
