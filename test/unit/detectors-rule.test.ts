import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRule, createDetectors, RuleSyntaxError, type RuleState } from '../../src/detectors/index.js';
import type { Detector } from '../../src/model/index.js';
import { aggregate, FakeContext, MINUTE, MONDAY, machineSchema, reading, spec } from './detectors-harness.js';

const machines = machineSchema();
const NONE = new Float64Array(0);

function value(text: string, metrics: Record<string, number> = {}): number {
  const rule = compileRule(text, machines);
  const m = new Float64Array(machines.metrics.length).fill(Number.NaN);
  for (const [name, v] of Object.entries(metrics)) m[machines.metricIndex[name]!] = v;
  return rule.evaluate(m, NONE);
}

test('operator precedence and associativity', () => {
  assert.equal(value('1 + 2 * 3 == 7'), 1);
  assert.equal(value('(1 + 2) * 3 == 9'), 1);
  assert.equal(value('2 - 3 - 4 == -5'), 1, 'minus is left-associative');
  assert.equal(value('8 / 4 / 2 == 1'), 1, 'division is left-associative');
  assert.equal(value('-2 * -3 == 6'), 1);
  assert.equal(value('1 > 2 or 2 > 1 and 3 > 4'), 0, 'and binds tighter than or');
  assert.equal(value('(1 > 2 or 2 > 1) and 3 > 4'), 0);
  assert.equal(value('(1 > 2 or 2 > 1) and 4 > 3'), 1);
  assert.equal(value('not 1 > 2 and 2 > 1'), 1, 'not binds tighter than and');
  assert.equal(value('NOT (2 > 1 AND 1 > 0)'), 0, 'keywords are case-insensitive');
  assert.equal(value('pi > 3.1415 and pi < 3.1416'), 1);
  assert.equal(value('1.5e2 >= 150 and 2 <= 2 and 3 != 4'), 1);
});

test('metric values, and unknown when a value is absent', () => {
  assert.equal(value('process_temp_k - air_temp_k < 8.6 and rpm < 1380', { process_temp_k: 309.4, air_temp_k: 301.2, rpm: 1342 }), 1);
  assert.equal(value('process_temp_k - air_temp_k < 8.6 and rpm < 1380', { process_temp_k: 309.4, air_temp_k: 298, rpm: 1342 }), 0);
  assert.ok(Number.isNaN(value('rpm < 1380', {})));
  assert.equal(value('rpm < 1380 and torque_nm > 1', { torque_nm: 0 }), 0, 'false and unknown is false');
  assert.equal(value('rpm < 1380 or torque_nm > 1', { torque_nm: 5 }), 1, 'true or unknown is true');
  const power = 'torque_nm * rpm * 2 * pi / 60 < 3500 or torque_nm * rpm * 2 * pi / 60 > 9000';
  assert.equal(value(power, { torque_nm: 4.6, rpm: 2861 }), 1);
  assert.equal(value(power, { torque_nm: 42.8, rpm: 1551 }), 0);
  assert.equal(value('tool_wear_min > 200', { tool_wear_min: 201 }), 1);
});

test('syntax errors name the position and what was expected', () => {
  const cases: Array<[string, number, RegExp]> = [
    ['avg(torque_nm, 1m > 65', 19, /expected "\)" after the window name, got ">"/],
    ['rpm <', 6, /unexpected end of the rule/],
    ['foo > 1', 1, /unknown metric "foo"; the stream has air_temp_k, process_temp_k, rpm, torque_nm, tool_wear_min/],
    ['avg(torque_nm, 2h) > 1', 16, /unknown window "2h"; the stream has 1m, 5m, 15m, 1m\/15s/],
    ['median(rpm, 1m) > 1', 1, /unknown statistic "median"; expected one of count, min, max, avg, sum, stddev, first, last/],
    ['rpm + 1', 1, /the rule is a number, expected a condition/],
    ['(rpm > 1', 9, /expected "\)" to close the "\(" at position 1/],
    ['rpm > 1 > 2', 9, /comparisons cannot be chained/],
    ['rpm > 1 xor', 9, /unexpected "xor"/],
  ];
  for (const [text, position, message] of cases) {
    assert.throws(
      () => compileRule(text, machines),
      (error: unknown) => error instanceof RuleSyntaxError && error.position === position && message.test(error.message) && error.message.startsWith(`syntax error at position ${position}: `),
      text,
    );
  }
});

function ruleDetector(when: string, extra: Record<string, unknown> = {}, alertType = 'overstrain') {
  const schema = machineSchema([spec('rule', { when, ...extra }, [], alertType)]);
  const [detector] = createDetectors(schema) as [Detector<RuleState>];
  return { schema, detector, state: detector.createState(), ctx: new FakeContext(schema) };
}

test('window terms use the latest emitted aggregate of that window', () => {
  const { schema, detector, state, ctx } = ruleDetector('avg(torque_nm, 1m) > 65');
  assert.equal(detector.alertType, 'overstrain');
  assert.equal(detector.metric, 'torque_nm');
  detector.onWindow!(state, aggregate(schema, '5m', MONDAY, MONDAY + 5 * MINUTE, { torque_nm: { avg: 90 } }), ctx);
  assert.equal(ctx.findings.length, 0, 'another window does not count');
  detector.onWindow!(state, aggregate(schema, '1m', MONDAY + MINUTE, MONDAY + 2 * MINUTE, { torque_nm: { avg: 68.2 } }), ctx);
  assert.equal(ctx.active().length, 1);
  const finding = ctx.active()[0]!;
  assert.equal(finding.time, MONDAY + 2 * MINUTE);
  assert.equal(finding.value, 68.2);
  assert.equal(finding.threshold, 65);
  assert.equal(finding.score, 0.7);
  assert.match(finding.explain, /^rule overstrain: "avg\(torque_nm, 1m\) > 65" holds: avg\(torque_nm, 1m\) = 68\.20 \(window ending 2025-01-06T00:02:00\.000Z\)$/);
  // A reading re-evaluates with the same window value.
  assert.equal(detector.onReading(state, reading(schema, MONDAY + 2 * MINUTE + 5000, { torque_nm: 40 }), ctx), 0.7);
  // An amendment of an older window does not replace the newer one.
  detector.onWindow!(state, aggregate(schema, '1m', MONDAY, MONDAY + MINUTE, { torque_nm: { avg: 10 } }, 1), ctx);
  assert.equal(ctx.cleared().length, 0);
  detector.onWindow!(state, aggregate(schema, '1m', MONDAY + 2 * MINUTE, MONDAY + 3 * MINUTE, { torque_nm: { avg: 60 } }), ctx);
  assert.equal(ctx.cleared().length, 1);
  assert.match(ctx.cleared()[0]!.explain, /no longer holds after 1m/);
});

test('a rule over current values with "for": reports once it has held long enough, then its end', () => {
  const { schema, detector, state, ctx } = ruleDetector('tool_wear_min > 200', { for: '2m' }, 'tool_wear');
  const wear = [198, 199, 201, 202, 203, Number.NaN, 204, 10];
  wear.forEach((w, i) => detector.onReading(state, reading(schema, MONDAY + i * MINUTE, Number.isNaN(w) ? { rpm: 1500 } : { tool_wear_min: w }), ctx));
  // Minute 5 has no tool wear: unknown, so nothing is reported and the condition keeps its start.
  assert.deepEqual(ctx.active().map((f) => (f.time - MONDAY) / MINUTE), [4, 6]);
  assert.equal(ctx.active()[0]!.value, 203);
  assert.match(ctx.active()[0]!.explain, /^rule tool_wear: "tool_wear_min > 200" holds for 2m \(for 2m\): tool_wear_min = 203$/);
  assert.match(ctx.active()[1]!.explain, /holds for 4m/);
  assert.equal(ctx.cleared().length, 1);
  assert.equal(ctx.cleared()[0]!.time, MONDAY + 7 * MINUTE);
});

test('the default machine rules parse and fire', () => {
  const rules: Array<[string, Record<string, number>]> = [
    ['process_temp_k - air_temp_k < 8.6 and rpm < 1380', { process_temp_k: 309.4, air_temp_k: 300.9, rpm: 1342 }],
    ['torque_nm * rpm * 2 * pi / 60 < 3500 or torque_nm * rpm * 2 * pi / 60 > 9000', { torque_nm: 4.6, rpm: 2861 }],
    ['tool_wear_min > 200', { tool_wear_min: 215 }],
  ];
  for (const [when, values] of rules) {
    const { schema, detector, state, ctx } = ruleDetector(when);
    assert.equal(detector.onReading(state, reading(schema, MONDAY, values), ctx), 0.7, when);
    assert.equal(ctx.active().length, 1, when);
  }
});
