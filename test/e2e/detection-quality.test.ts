import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replay } from '../../src/cli/commands/replay.js';
import { simulate } from '../../src/ingest/index.js';
import { evaluateDetections, formatEvalReport, parseDetectionRecord, parseLabelSet } from '../../src/ml/index.js';

function records(path: string): ReturnType<typeof parseDetectionRecord>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l, i) => parseDetectionRecord(JSON.parse(l) as unknown, `${path}:${i + 1}`));
}

// The bar, on a seed other than the README's: every injected type is found (recall ≥ 0.95)
// and what is reported is mostly right (precision ≥ 0.9).
test('detectors find every injected anomaly type with recall ≥ 0.95 and precision ≥ 0.9 (simulated week, seed 2)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gp-quality-'));
  const sim = join(dir, 'sim.ndjson');
  const labelsPath = join(dir, 'labels.json');
  await simulate({ meters: 40, machines: 4, days: 7, seed: 2, out: sim, labels: labelsPath });
  const alerts = join(dir, 'alerts.ndjson');
  const ops = join(dir, 'ops.ndjson');
  await replay({ files: [sim], hints: {}, noStore: true, alertsOut: alerts, opsOut: ops });
  const labels = parseLabelSet(JSON.parse(readFileSync(labelsPath, 'utf8')) as unknown);
  const report = evaluateDetections(labels, [...records(alerts), ...records(ops)]);
  const table = formatEvalReport(report);
  for (const row of report.types) {
    if (row.labels === 0) continue;
    const recall = row.recall ?? 0;
    // No detection at all has no precision to speak of; recall then fails the test anyway.
    const precision = row.precision ?? 1;
    assert.ok(recall >= 0.95, `${row.type}: recall ${recall.toFixed(3)} < 0.95\n${table}`);
    assert.ok(precision >= 0.9, `${row.type}: precision ${precision.toFixed(3)} < 0.9\n${table}`);
  }
});
