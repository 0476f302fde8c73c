import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  type DetectionRecord,
  type EvalLabel,
  type EvalLabelSet,
  type EvalTypeResult,
  evaluateDetections,
  formatEvalReport,
  parseDetectionRecord,
  parseLabelSet,
} from '../../src/ml/index.js';
import { type AlertEvent, type OpsEvent, type TransitionKind, GpError, opsEvent } from '../../src/model/index.js';

const MINUTE_MS = 60_000;

function label(id: string, type: EvalLabel['type'], key: string, start: number, end: number, offsets?: number[]): EvalLabel {
  const made: EvalLabel = { id, type, stream: 'power', key, start, end, magnitude: 1 };
  if (offsets !== undefined) made.offsets = offsets;
  return made;
}

/** The lines one alert writes over its life: open, then the given further transitions. */
function alertLines(id: string, type: string, key: string, openedAt: number, more: Array<[TransitionKind, number]> = []): AlertEvent[] {
  const steps: Array<[TransitionKind, number]> = [['open', openedAt], ...more];
  return steps.map(([kind, time], seq) => ({
    alert: {
      id,
      stream: 'power',
      key,
      site: undefined,
      type,
      metric: 'usageKw',
      severity: 'warning',
      status: kind === 'resolve' ? 'resolved' : 'open',
      openedAt,
      updatedAt: time,
      resolvedAt: kind === 'resolve' ? time : undefined,
      score: 0.8,
      peakScore: 0.8,
      value: 1,
      findings: seq + 1,
      explain: '',
    },
    transition: { id: `${id}:${seq}`, alertId: id, seq, kind, time, status: 'open', severity: 'warning', score: 0.8, explain: '' },
  }));
}

function ops(kind: OpsEvent['kind'], key: string | undefined, time: number | undefined, offset: number | undefined): OpsEvent {
  return opsEvent(kind, 'power', 'test', { key, time, offset });
}

const labels: EvalLabelSet = {
  version: 1,
  anomalies: [
    label('a-1', 'spike', 'm-1', 1_000_000, 1_000_000),
    label('a-2', 'spike', 'm-4', 2_000_000, 2_000_000),
    label('a-3', 'drop', 'm-2', 5_000_000, 5_060_000),
    label('a-4', 'outage', 'm-1', 10_000_000, 11_000_000),
    label('a-5', 'duplicate', 'm-2', 12_000_000, 12_000_000, [42]),
    label('a-6', 'late', 'm-1', 20_000_000, 20_005_000, [77]),
    label('a-7', 'gap', 'm-3', 30_000_000, 30_180_000),
  ],
};

const records: DetectionRecord[] = [
  // Found 60 s after the spike; three lines, one alert.
  ...alertLines('al-1', 'spike', 'm-1', 1_060_000, [['update', 1_120_000], ['resolve', 1_400_000]]),
  ...alertLines('al-2', 'spike', 'm-4', 2_300_000),
  // Nothing near: a false positive.
  ...alertLines('al-3', 'spike', 'm-1', 50_000_000),
  // A drop alert at the onset of the outage: explained, not false.
  ...alertLines('al-4', 'drop', 'm-1', 10_030_000),
  ...alertLines('al-5', 'outage', 'm-1', 10_120_000, [['resolve', 11_100_000]]),
  // A detector without a label type.
  ...alertLines('al-6', 'zscore', 'm-1', 10_000_000),
  ...alertLines('al-7', 'zscore', 'm-9', 10_000_000),
  ...alertLines('al-8', 'silence', 'm-3', 30_300_000),
  ops('gap', 'm-3', 30_240_000, 5000),
  ops('duplicate', 'm-2', 12_000_000, 42),
  // A duplicate on a line no label names, far from any label: false positive.
  ops('duplicate', 'm-2', 90_000_000, 43),
  ops('out_of_order', 'm-1', 20_000_000, 77),
  // A line that is not even JSON has no key and no time; no malformed label names it.
  ops('invalid', undefined, undefined, 99),
  ops('evicted', 'm-5', 95_000_000, undefined),
];

const rowOf = (report: ReturnType<typeof evaluateDetections>, type: string): EvalTypeResult => {
  const row = report.types.find((candidate) => candidate.type === type);
  assert.ok(row, `no row for ${type}`);
  return row;
};

describe('detection evaluator', () => {
  const report = evaluateDetections(labels, records);

  it('counts true and false positives per type, one detection per alert id', () => {
    const spike = rowOf(report, 'spike');
    assert.deepEqual(
      [spike.labels, spike.matchedLabels, spike.detections, spike.truePositives, spike.falsePositives, spike.explained],
      [2, 2, 3, 2, 1, 0],
    );
    assert.equal(spike.recall, 1);
    assert.equal(spike.precision, 2 / 3);
    assert.equal(spike.f1, 0.8);
    const duplicate = rowOf(report, 'duplicate');
    assert.deepEqual([duplicate.truePositives, duplicate.falsePositives, duplicate.recall, duplicate.precision], [1, 1, 1, 0.5]);
    const malformed = rowOf(report, 'malformed');
    assert.deepEqual([malformed.labels, malformed.detections, malformed.falsePositives, malformed.recall, malformed.precision], [0, 1, 1, null, 0]);
  });

  it('counts a detection during an anomaly of another type as explained, not as a false positive', () => {
    const drop = rowOf(report, 'drop');
    assert.deepEqual([drop.detections, drop.truePositives, drop.falsePositives, drop.explained], [1, 0, 0, 1]);
    assert.deepEqual(drop.explainedBy, { outage: 1 });
    // Its own label was missed, and nothing is left to judge precision on.
    assert.equal(drop.recall, 0);
    assert.deepEqual(drop.missed, ['a-3']);
    assert.equal(drop.precision, null);
    const outage = rowOf(report, 'outage');
    assert.deepEqual([outage.truePositives, outage.falsePositives, outage.precision, outage.recall], [1, 0, 1, 1]);
  });

  it('measures the delay from the label start to the first matching detection', () => {
    const spike = rowOf(report, 'spike');
    assert.equal(spike.delayMedianSeconds, 180);
    assert.equal(spike.delayP95Seconds, 60 + 0.95 * 240);
    assert.equal(rowOf(report, 'outage').delayMedianSeconds, 120);
    // The ops gap event (240 s) came before the silence alert (300 s); both are true positives.
    const gap = rowOf(report, 'gap');
    assert.deepEqual([gap.detections, gap.truePositives, gap.delayMedianSeconds], [2, 2, 240]);
    // Line-based labels are found when their line is read: no delay to measure.
    assert.equal(rowOf(report, 'late').delayMedianSeconds, null);
  });

  it('matches line-based labels by line number only', () => {
    const late = rowOf(report, 'late');
    assert.deepEqual([late.labels, late.truePositives, late.recall], [1, 1, 1]);
    const moved = evaluateDetections(labels, [ops('out_of_order', 'm-1', 20_000_000, 78)]);
    assert.equal(rowOf(moved, 'late').recall, 0);
    assert.equal(rowOf(moved, 'late').falsePositives, 1);
  });

  it('sums over types and lists detectors that have no label type', () => {
    assert.deepEqual(report.total, {
      labels: 7,
      matchedLabels: 6,
      detections: 11,
      truePositives: 7,
      falsePositives: 3,
      explained: 1,
      recall: 6 / 7,
      precision: 7 / 10,
      f1: (2 * (7 / 10) * (6 / 7)) / (7 / 10 + 6 / 7),
    });
    assert.deepEqual(report.otherDetectors, [
      { source: 'alert', type: 'zscore', detections: 2, overlappingLabels: 1 },
      { source: 'ops', type: 'evicted', detections: 1, overlappingLabels: 0 },
    ]);
    assert.deepEqual([report.labels, report.alerts, report.opsEvents], [7, 8, 6]);
  });

  it('counts from 2 min before a label to the tolerance after it, and counts reopened alerts at their reopening', () => {
    const one = { version: 1 as const, anomalies: [label('a-1', 'sustained_high', 'm-1', 1_000_000, 2_000_000)] };
    const at = (openedAt: number, toleranceMs?: number): number | null =>
      rowOf(evaluateDetections(one, alertLines('x', 'sustained_high', 'm-1', openedAt), toleranceMs === undefined ? {} : { toleranceMs }), 'sustained_high').recall;
    assert.equal(at(1_000_000 - 2 * MINUTE_MS), 1);
    assert.equal(at(1_000_000 - 3 * MINUTE_MS), 0);
    assert.equal(at(2_000_000 + 15 * MINUTE_MS), 1);
    assert.equal(at(2_000_000 + 16 * MINUTE_MS), 0);
    assert.equal(at(2_000_000 + 16 * MINUTE_MS, 20 * MINUTE_MS), 1);
    const early = rowOf(evaluateDetections(one, alertLines('x', 'sustained_high', 'm-1', 1_000_000 - MINUTE_MS)), 'sustained_high');
    assert.equal(early.delayMedianSeconds, -60);
    // Opened long before, reopened inside the label: the reopening is the detection.
    const reopened = alertLines('y', 'sustained_high', 'm-1', 100_000, [['resolve', 200_000], ['reopen', 1_300_000]]);
    const result = rowOf(evaluateDetections(one, reopened), 'sustained_high');
    assert.deepEqual([result.truePositives, result.delayMedianSeconds], [1, 300]);
  });

  it('rejects a labels file with a bad field, naming it', () => {
    const bad = (value: unknown): string => {
      try {
        parseLabelSet(value);
      } catch (error) {
        assert.ok(error instanceof GpError);
        assert.equal(error.code, 'GP_LABELS_INVALID');
        return error.message;
      }
      assert.fail('expected GP_LABELS_INVALID');
    };
    assert.match(bad({ version: 2, anomalies: [] }), /^\/version: expected 1, got 2/);
    assert.match(bad({ version: 1 }), /^\/anomalies: expected an array/);
    assert.match(bad({ version: 1, anomalies: [{ ...label('a', 'spike', 'm', 1, 1), start: 'x' }] }), /^\/anomalies\/0\/start: expected epoch milliseconds/);
    assert.match(bad({ version: 1, anomalies: [{ ...label('a', 'spike', 'm', 1, 1), type: 'blip' }] }), /^\/anomalies\/0\/type: expected one of spike, drop/);
    assert.match(bad({ version: 1, anomalies: [label('a', 'late', 'm', 1, 1, [0])] }), /^\/anomalies\/0\/offsets\/0: expected a 1-based line number/);
  });

  it('recognises result lines by their fields', () => {
    const [alertLine] = alertLines('al', 'spike', 'm-1', 5);
    assert.ok('alert' in parseDetectionRecord(JSON.parse(JSON.stringify(alertLine)), 'a:1'));
    const opsLine = parseDetectionRecord(JSON.parse(JSON.stringify(ops('invalid', undefined, undefined, 3))), 'o:1');
    assert.ok('kind' in opsLine && opsLine.kind === 'invalid' && opsLine.offset === 3 && opsLine.key === undefined);
    assert.throws(() => parseDetectionRecord({ hello: 1 }, 'o:2'), (error: unknown) => error instanceof GpError && /^o:2: expected an AlertEvent/.test(error.message));
    assert.throws(() => parseDetectionRecord({ kind: 'weird', stream: 'power' }, 'o:3'), /o:3: kind: expected one of invalid/);
  });

  it('prints a table with one row per type, the explained detections and the other detectors', () => {
    const text = formatEvalReport(report);
    assert.match(text, /^spike\s+2\s+3\s+2\s+1\s+0\s+1\.000\s+0\.667\s+0\.800\s+180\.0\s+288\.0$/m);
    assert.match(text, /^drop\s+1\s+1\s+0\s+0\s+1\s+0\.000\s+—\s+—\s+—\s+—$/m);
    assert.match(text, /^all\s+7\s+11\s+7\s+3\s+1\s+0\.857\s+0\.700\s+0\.771$/m);
    assert.match(text, /^ {2}drop: outage 1$/m);
    assert.match(text, /^ {2}alert zscore: 2 detections, 1 overlapping a label$/m);
  });
});
