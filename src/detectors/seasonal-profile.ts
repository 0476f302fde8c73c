import type { Reading } from '../model/index.js';
import { formatNumber } from './common.js';

/**
 * A per-device daily profile: for each time-of-day slot and day type (weekday, weekend) the
 * slot's mean and mean absolute deviation, each an EWMA across days. Memory is fixed: three
 * numbers per slot and day type (96 slots of 15 minutes → 576 numbers). Used by `seasonal` and
 * `sustained_high`.
 *
 * A day's readings in one slot are summed while the slot runs and folded into the profile when
 * the device's next reading falls in another slot, so the current slot is always judged against
 * past days only.
 */

export const DAY_MS = 86_400_000;

export interface ProfileConfig {
  slotMs: number;
  /** Slots per day (DAY_MS / slotMs). */
  slots: number;
  /** Neighbouring slots on each side whose means widen the expected range (time shift tolerance). */
  shiftSlots: number;
  /** Weight of the newest day in the EWMA across days. */
  dayWeight: number;
  /** Days a slot needs before it is used. */
  minDays: number;
  /** Whether a lookup may use the other day type's slot while the reading's own is not learned. */
  borrow: boolean;
  /** Added to event time before slots and days are cut (local time = UTC + offset). */
  offsetMs: number;
}

/**
 * A device's profile, part of a detector's state: plain numbers and arrays. The expectation for
 * the current slot and the learned mean of the accumulating slot are cached in it, so a reading
 * inside a slot touches only this object's fields.
 */
export interface ProfileState {
  /** [dayType × slots + slot]: EWMA across days of the slot mean. */
  mean: number[];
  /** Same layout: EWMA across days of the mean absolute deviation of readings from the expected mean. */
  deviation: number[];
  /** Same layout: days folded in (capped). */
  days: number[];
  /** Absolute slot number (since the epoch, local) being accumulated, or -1, and its index in the arrays. */
  slot: number;
  index: number;
  sum: number;
  absolute: number;
  count: number;
  /** The learned mean of the accumulating slot (1 in slotKnown when it has one), taken when the slot began. */
  slotMean: number;
  slotKnown: number;
  /** What the profile expects in the slot of the latest lookup (computed once per slot). */
  expectedSlot: number;
  /** 1 when the profile had a learned slot to offer. */
  expectedFound: number;
  /** Lowest and highest learned mean within ± shiftSlots of the slot. */
  expectedLow: number;
  expectedHigh: number;
  expectedMean: number;
  expectedDeviation: number;
  expectedDays: number;
  /** 1 when the other day type's profile was borrowed. */
  expectedBorrowed: number;
  expectedDayType: number;
  expectedSlotOfDay: number;
}

const DAY_CAP = 100_000;

/** A fresh profile. */
export function createProfileState(config: ProfileConfig): ProfileState {
  const size = 2 * config.slots;
  return {
    mean: new Array<number>(size).fill(0),
    deviation: new Array<number>(size).fill(0),
    days: new Array<number>(size).fill(0),
    slot: -1,
    index: 0,
    sum: 0,
    absolute: 0,
    count: 0,
    slotMean: 0,
    slotKnown: 0,
    expectedSlot: -1,
    expectedFound: 0,
    expectedLow: 0,
    expectedHigh: 0,
    expectedMean: 0,
    expectedDeviation: 0,
    expectedDays: 0,
    expectedBorrowed: 0,
    expectedDayType: 0,
    expectedSlotOfDay: 0,
  };
}

/** 0 for Monday–Friday, 1 for Saturday and Sunday, of an absolute (local) day number. */
export function dayTypeOfDay(dayNumber: number): number {
  // 1970-01-01 was a Thursday: (day + 4) mod 7 gives 0 = Sunday … 6 = Saturday.
  const weekday = (((dayNumber + 4) % 7) + 7) % 7;
  return weekday === 0 || weekday === 6 ? 1 : 0;
}

/**
 * Learns the value of metric `index` of a reading. Takes the reading rather than its numbers:
 * numbers passed to a call that is not inlined are boxed, an allocation per reading.
 */
export function profileObserve(p: ProfileState, config: ProfileConfig, reading: Reading, index: number): void {
  learnValue(p, config, reading.time, reading.values[index]!);
}

/** Learns a value clamped to [low, high] (an anomaly learned only up to its threshold). */
export function profileObserveClamped(p: ProfileState, config: ProfileConfig, reading: Reading, index: number, low: number, high: number): void {
  const x = reading.values[index]!;
  learnValue(p, config, reading.time, x < low ? low : x > high ? high : x);
}

function learnValue(p: ProfileState, config: ProfileConfig, time: number, x: number): void {
  const slot = Math.floor((time + config.offsetMs) / config.slotMs);
  if (slot !== p.slot) {
    if (p.slot >= 0 && p.count > 0) fold(p, config);
    const i = indexOfSlot(slot, config);
    p.slot = slot;
    p.index = i;
    p.sum = 0;
    p.absolute = 0;
    p.count = 0;
    p.slotKnown = p.days[i]! > 0 ? 1 : 0;
    p.slotMean = p.slotKnown === 1 ? p.mean[i]! : 0;
  }
  const expected = p.slotKnown === 1 ? p.slotMean : p.count > 0 ? p.sum / p.count : x;
  p.sum += x;
  p.absolute += x > expected ? x - expected : expected - x;
  p.count++;
}

function indexOfSlot(slot: number, config: ProfileConfig): number {
  const day = Math.floor(slot / config.slots);
  return dayTypeOfDay(day) * config.slots + (slot - day * config.slots);
}

function fold(p: ProfileState, config: ProfileConfig): void {
  const i = p.index;
  const dayMean = p.sum / p.count;
  const dayDeviation = p.absolute / p.count;
  const days = p.days[i]!;
  if (days === 0) {
    p.mean[i] = dayMean;
    p.deviation[i] = dayDeviation;
  } else {
    // Plain average over the first days, then an EWMA: early days are not overweighted.
    const weight = Math.max(config.dayWeight, 1 / (days + 1));
    p.mean[i] = p.mean[i]! + weight * (dayMean - p.mean[i]!);
    // A first day with no spread (one reading in the slot, as from a half-hourly meter) told
    // nothing about the deviation: the second day's is taken whole instead of halved.
    const deviation = p.deviation[i]!;
    p.deviation[i] = days === 1 && deviation === 0 ? dayDeviation : deviation + weight * (dayDeviation - deviation);
  }
  p.days[i] = days < DAY_CAP ? days + 1 : DAY_CAP;
}

/**
 * What the profile expects at the reading's time, in the `expected…` fields: the slot of the reading's own day type
 * when learned (≥ minDays), else with `borrow` the other day type's (borrowed = 1), else nothing
 * (returns false). Computed once per slot: later readings of the slot reuse it, so today's readings never
 * move the expectation they are judged against.
 */
export function profileLookup(p: ProfileState, config: ProfileConfig, reading: Reading): boolean {
  const slot = Math.floor((reading.time + config.offsetMs) / config.slotMs);
  if (slot === p.expectedSlot) return p.expectedFound === 1;
  p.expectedSlot = slot;
  p.expectedFound = 0;
  const day = Math.floor(slot / config.slots);
  const slotOfDay = slot - day * config.slots;
  const ownType = dayTypeOfDay(day);
  p.expectedDayType = ownType;
  p.expectedSlotOfDay = slotOfDay;
  let type = ownType;
  if (p.days[type * config.slots + slotOfDay]! < config.minDays) {
    if (!config.borrow) return false;
    type = 1 - ownType;
    if (p.days[type * config.slots + slotOfDay]! < config.minDays) return false;
  }
  const base = type * config.slots;
  const i = base + slotOfDay;
  let low = p.mean[i]!;
  let high = low;
  for (let shift = -config.shiftSlots; shift <= config.shiftSlots; shift++) {
    if (shift === 0) continue;
    let j = slotOfDay + shift;
    if (j < 0) j += config.slots;
    else if (j >= config.slots) j -= config.slots;
    if (p.days[base + j]! < config.minDays) continue;
    const m = p.mean[base + j]!;
    if (m < low) low = m;
    if (m > high) high = m;
  }
  p.expectedFound = 1;
  p.expectedLow = low;
  p.expectedHigh = high;
  p.expectedMean = p.mean[i]!;
  p.expectedDeviation = p.deviation[i]!;
  p.expectedDays = p.days[i]!;
  p.expectedBorrowed = type === ownType ? 0 : 1;
  return true;
}

/** "weekday 18:15–18:30, learned over 5 days" for an explanation, from the latest lookup. */
export function describeSlot(config: ProfileConfig, p: ProfileState): string {
  const start = p.expectedSlotOfDay * config.slotMs;
  const clock = (ms: number) => {
    const minutes = Math.round(ms / 60_000) % 1440;
    return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
  };
  const type = p.expectedDayType === 1 ? 'weekend' : 'weekday';
  const borrowed = p.expectedBorrowed === 1 ? ` (borrowed from the ${p.expectedDayType === 1 ? 'weekday' : 'weekend'} profile)` : '';
  return `${type} ${clock(start)}–${clock(start + config.slotMs)}${borrowed}, learned over ${formatNumber(p.expectedDays)} day${p.expectedDays === 1 ? '' : 's'}`;
}

/**
 * The learned mean of an absolute (local) slot number, `slot = floor((time + offset) / slotMs)`,
 * in that slot's own day type; NaN while it has fewer than `minDays` days. Lets a detector read
 * the slots around a time (to interpolate between them) without a lookup.
 *
 * @example
 * const slot = Math.floor((reading.time + config.offsetMs) / config.slotMs);
 * const before = profileSlotMean(state.profile, config, slot - 1);
 */
export function profileSlotMean(p: ProfileState, config: ProfileConfig, slot: number): number {
  const i = indexOfSlot(slot, config);
  return p.days[i]! >= config.minDays ? p.mean[i]! : Number.NaN;
}
