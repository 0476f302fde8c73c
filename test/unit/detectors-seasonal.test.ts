import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDetectors } from '../../src/detectors/index.js';
import { constantWithNoise, dailyLoad, DAY, HOUR, MINUTE, MONDAY, prng, run, singleSchema, spec, type Sample } from './detectors-harness.js';

function detect(type: string, samples: Iterable<Sample>, params: Record<string, unknown> = {}) {
  const schema = singleSchema([spec(type, params)]);
  return run(schema, createDetectors(schema), samples);
}

/** Daily load for `days` with value × factor between `from` and `to` (absolute times). */
function loadWithEpisode(days: number, from: number, to: number, factor: number): Sample[] {
  return [...dailyLoad(MONDAY, days, MINUTE, 0.02)].map((s) => (s.time >= from && s.time < to ? { time: s.time, values: { x: s.values.x! * factor } } : s));
}

test('sustained_high with a level fires after the duration, not before, and reports the end', () => {
  const samples: Sample[] = [];
  for (let i = 0; i < 80; i++) samples.push({ time: MONDAY + i * MINUTE, values: { x: i >= 30 && i < 50 ? 4 : 2 } });
  const { ctx, scores } = detect('sustained_high', samples, { level: 3, duration: '10m' });
  const active = ctx.active();
  assert.equal((active[0]!.time - MONDAY) / MINUTE, 40, 'first report once high for 10 minutes');
  assert.equal(active.length, 10);
  assert.equal(scores[39], 0, 'high but not yet long enough: nothing to say yet');
  assert.ok(scores[40]! >= 0.5);
  assert.ok(active[0]!.score >= 0.5);
  assert.match(active[0]!.explain, /^x has been above the configured level 3 for 10m since 2025-01-06T00:30:00\.000Z; now 4; duration threshold 10m$/);
  const cleared = ctx.cleared();
  assert.equal(cleared.length, 1);
  assert.equal((cleared[0]!.time - MONDAY) / MINUTE, 50);
  assert.match(cleared[0]!.explain, /no longer above 3; it was high for 20m/);
  // A high run shorter than the duration says nothing.
  const short = samples.map((s, i) => ({ time: s.time, values: { x: i >= 30 && i < 39 ? 4 : 2 } }));
  assert.equal(detect('sustained_high', short, { level: 3, duration: '10m' }).ctx.findings.length, 0);
});

test('sustained_high learns the daily profile and flags a high night', () => {
  // Thursday night 02:00–02:40 at double the usual night load.
  const from = MONDAY + 3 * DAY + 2 * HOUR;
  const { ctx } = detect('sustained_high', loadWithEpisode(4, from, from + 40 * MINUTE, 2));
  const active = ctx.active();
  assert.ok(active.length > 0);
  // Reported once the default duration (5 min) has passed.
  assert.equal(active[0]!.time, from + 5 * MINUTE);
  assert.match(active[0]!.explain, /expected 1\.\d+ from its (seasonal profile, weekday 02:\d\d–02:\d\d, learned over 3 days|slow EWMA baseline, half-life \d+m); margin \+\d+% and 3 × deviation/);
  assert.ok(active.every((f) => f.time < from + 40 * MINUTE));
  assert.equal(ctx.cleared().length, 1);
  assert.equal(ctx.cleared()[0]!.time, from + 40 * MINUTE);
});

test('sustained_high uses its slow baseline before a day is learned', () => {
  const samples = [...constantWithNoise(MONDAY, 600, MINUTE, 2, 0.01)].map((s, i) => (i >= 300 && i < 340 ? { time: s.time, values: { x: 3.2 } } : s));
  const { ctx } = detect('sustained_high', samples, { warmup: '2h' });
  assert.equal(ctx.active()[0]!.time, MONDAY + 305 * MINUTE);
  assert.match(ctx.active()[0]!.explain, /from its slow EWMA baseline, half-life \d+[mh]/);
});

test('sustained_high above a learned percentile', () => {
  // Two days of 2 ± 2%, then half an hour at 2.3: above the 99th percentile (about 2.09).
  const samples = [...constantWithNoise(MONDAY, 3000, MINUTE, 2, 0.02)].map((s, i) => (i >= 2880 && i < 2910 ? { time: s.time, values: { x: 2.3 } } : s));
  const { ctx } = detect('sustained_high', samples, { percentile: 99, duration: '15m' });
  assert.equal(ctx.active()[0]!.time, MONDAY + 2895 * MINUTE);
  assert.match(ctx.active()[0]!.explain, /above its learned 99th percentile 2\.\d\d for 15m/);
});

test('seasonal flags a value far outside the learned range for the time of day', () => {
  const from = MONDAY + 4 * DAY + 3 * HOUR; // Friday 03:00, night load ~1.5
  const { ctx } = detect('seasonal', loadWithEpisode(5, from, from + 5 * MINUTE, 3));
  const active = ctx.active();
  assert.equal(active.length, 5);
  assert.equal(active[0]!.time, from);
  assert.match(active[0]!.explain, /^x 4\.\d\d is \d\.\d\d above its seasonal expected range 1\.\d\d–1\.\d\d \(weekday 03:00–03:15, learned over 4 days, ±30m\); thresholds 5 × deviation/);
  assert.ok(active[0]!.score >= 0.8);
  assert.equal(ctx.cleared()[0]!.time, from + 5 * MINUTE);
});

test('seasonal says nothing until a slot is learned, then judges lows too', () => {
  const early = MONDAY + 10 * HOUR + 30 * MINUTE;
  assert.equal(detect('seasonal', loadWithEpisode(2, early, early + 5 * MINUTE, 4)).ctx.findings.length, 0, 'day one: no profile');
  const from = MONDAY + 3 * DAY + 19 * HOUR; // Thursday evening peak
  const { ctx } = detect('seasonal', loadWithEpisode(4, from, from + 3 * MINUTE, 0.2));
  assert.equal(ctx.active().length, 3);
  assert.match(ctx.active()[0]!.explain, /below its seasonal expected range/);
  assert.equal(detect('seasonal', loadWithEpisode(4, from, from + 3 * MINUTE, 0.2), { direction: 'high' }).ctx.findings.length, 0);
});

test('seasonal learns the spread of a half-hourly meter from its second day (a first day of one reading per slot has none)', () => {
  // 1.0 every half hour, but 1.4 on Tuesday at 03:00: the slot's deviation is 0.4 after two days
  // (it was halved to 0.2, the first day's single reading counting as no spread).
  const halfHourly = (wednesday: number): Sample[] => {
    const out: Sample[] = [];
    for (let i = 0; i < 3 * 48; i++) {
      const time = MONDAY + i * 30 * MINUTE;
      const x = time === MONDAY + DAY + 3 * HOUR ? 1.4 : time === MONDAY + 2 * DAY + 3 * HOUR ? wednesday : 1;
      out.push({ time, values: { x } });
    }
    return out;
  };
  // 1.3 above the range 1.0–1.2 is within 5 × 0.4; 2.3 above it is not.
  assert.deepEqual(detect('seasonal', halfHourly(2.5)).ctx.findings, []);
  const active = detect('seasonal', halfHourly(3.5)).ctx.active();
  assert.equal(active.length, 1);
  assert.match(active[0]!.explain, /^x 3\.50 is 2\.30 above its seasonal expected range 1–1\.20 \(weekday 03:00–03:15, learned over 2 days, ±30m\); thresholds 5 × deviation 0\.400 = 2(\.00)? and 30% of 1\.20 = 0\.360$/);
});

test('seasonal judges a weekend only against learned weekends: a plant idle on its first weekend is not reported', () => {
  // Five weekdays of the daily load, then a weekend at a third of the harness's weekend shape.
  const week = [...dailyLoad(MONDAY, 7, MINUTE, 0.02)].map((s) => (s.time >= MONDAY + 5 * DAY ? { time: s.time, values: { x: s.values.x! / 3 } } : s));
  const weekend = (f: { time: number }) => f.time >= MONDAY + 5 * DAY;
  assert.deepEqual(detect('seasonal', week).ctx.findings.filter(weekend), []);
  // borrow: true judges it against the weekday profile (thresholds twice as wide) and reports it.
  const borrowed = detect('seasonal', week, { borrow: true }).ctx.active().filter(weekend);
  assert.ok(borrowed.length > 100, `borrowing reports the weekend (${borrowed.length})`);
  assert.match(borrowed[0]!.explain, /below its seasonal expected range .*\(borrowed from the weekday profile\)/);
});

test('sustained_high: a load that is off, then on for an hour or two, many times a day is not a sustained high', () => {
  // Half-hourly, like London meter MAC000012: 0 for 1h30, then about 0.08 for 1h30, again and
  // again. Its learned level sinks to 0 (the runs are not learned), so every run was a step:
  // 455 alerts in a quarter. In runs half of its time, its runs are its pattern.
  const random = prng(12);
  const samples: Sample[] = [];
  for (let i = 0; i < 14 * 48; i++) samples.push({ time: MONDAY + i * 30 * MINUTE, values: { x: i % 6 >= 3 ? 0.06 + 0.04 * random.next() : 0 } });
  const later = (f: { time: number }) => f.time >= MONDAY + 4 * DAY;
  const reported = detect('sustained_high', samples).ctx.active();
  assert.deepEqual(reported.filter(later), [], 'nothing once its share of high runs is known');
  // highShare 1 reports the runs as before.
  const all = detect('sustained_high', samples, { highShare: 1 }).ctx.active().filter(later);
  assert.ok(all.length > 40, `with highShare 1 the runs are reported (${all.length})`);
});

test('sustained_high does not report the return to the usual level after an outage', () => {
  // Thursday 10:00–10:45 the meter reads about zero (an outage), then comes back to its usual load.
  const from = MONDAY + 3 * DAY + 10 * HOUR;
  const samples = [...dailyLoad(MONDAY, 4, MINUTE, 0.02)].map((s) => (s.time >= from && s.time < from + 45 * MINUTE ? { time: s.time, values: { x: 0.01 } } : s));
  const { ctx } = detect('sustained_high', samples);
  const after = ctx.active().filter((f) => f.time >= from && f.time < from + 3 * HOUR);
  assert.deepEqual(after.map((f) => f.explain), [], 'coming back is not a rise');
});

test('sustained_high finds a +35% episode that starts on the steep morning ramp', () => {
  const found: number[] = [];
  for (const hour of [6, 7, 8]) {
    const from = MONDAY + 3 * DAY + hour * HOUR + 10 * MINUTE;
    const { ctx } = detect('sustained_high', loadWithEpisode(4, from, from + 40 * MINUTE, 1.35));
    const inside = ctx.active().filter((f) => f.time >= from && f.time < from + 40 * MINUTE);
    if (inside.length > 0) found.push(hour);
    // Nothing before the episode on its day, and over within 30 minutes of its end (on a rising ramp
    // the run's limit is the one set at onset, so it can outlast the episode a little).
    const outside = ctx.active().filter((f) => f.time >= MONDAY + 3 * DAY && f.time < MONDAY + 4 * DAY && (f.time < from || f.time >= from + 70 * MINUTE));
    assert.deepEqual(outside.map((f) => new Date(f.time).toISOString()), [], `no finding outside the episode at ${hour}:10`);
  }
  assert.deepEqual(found, [6, 7, 8], 'each episode on the ramp is found');
});
