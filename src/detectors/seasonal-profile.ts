import type { Reading } from '../model/index.js';
import { doubles, formatNumber } from './common.js';

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
 * A device's profile, part of a detector's state: one array of numbers (unboxed doubles on the
 * heap), its fields at the offsets below, then three numbers per slot and day type —
 * [dayType × slots + slot] → mean, deviation, days at HEADER + 3 × index. A reading touches one
 * object and a few neighbouring numbers instead of a dozen heap numbers and three arrays: with
 * thousands of devices taking turns, each of those was a cache miss.
 * The expectation for the current slot and the learned mean of the accumulating slot are cached
 * in it, so a reading inside a slot touches only its first numbers.
 */
export type ProfileState = number[];

/** Absolute slot number (since the epoch, local) being accumulated, or -1, and its index. */
const SLOT = 0;
const INDEX = 1;
const SUM = 2;
const ABSOLUTE = 3;
const COUNT = 4;
/** The learned mean of the accumulating slot (1 in SLOT_KNOWN when it has one), taken when the slot began. */
const SLOT_MEAN = 5;
const SLOT_KNOWN = 6;
/** Slot of the latest lookup (its expectation is computed once per slot). */
const EXPECTED_SLOT = 7;
/** 1 when the profile had a learned slot to offer. */
const EXPECTED_FOUND = 8;
/** Lowest and highest learned mean within ± shiftSlots of the slot. */
export const EXPECTED_LOW = 9;
export const EXPECTED_HIGH = 10;
export const EXPECTED_MEAN = 11;
export const EXPECTED_DEVIATION = 12;
const EXPECTED_DAYS = 13;
/** 1 when the other day type's profile was borrowed. */
export const EXPECTED_BORROWED = 14;
const EXPECTED_DAY_TYPE = 15;
const EXPECTED_SLOT_OF_DAY = 16;
const HEADER = 17;
/** Per slot and day type: EWMA across days of the slot mean; of the mean absolute deviation of readings from the expected mean; days folded in (capped). */
const MEAN = 0;
const DEVIATION = 1;
const DAYS = 2;
const PER_SLOT = 3;

const DAY_CAP = 100_000;

/** A fresh profile. */
export function createProfileState(config: ProfileConfig): ProfileState {
  const p = doubles(HEADER + PER_SLOT * 2 * config.slots);
  p[SLOT] = -1;
  p[EXPECTED_SLOT] = -1;
  return p;
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
  if (slot !== p[SLOT]) {
    if (p[SLOT]! >= 0 && p[COUNT]! > 0) fold(p, config);
    const i = indexOfSlot(slot, config);
    const o = slotAt(i);
    p[SLOT] = slot;
    p[INDEX] = i;
    p[SUM] = 0;
    p[ABSOLUTE] = 0;
    p[COUNT] = 0;
    p[SLOT_KNOWN] = p[o + DAYS]! > 0 ? 1 : 0;
    p[SLOT_MEAN] = p[SLOT_KNOWN] === 1 ? p[o + MEAN]! : 0;
  }
  const count = p[COUNT]!;
  const expected = p[SLOT_KNOWN] === 1 ? p[SLOT_MEAN]! : count > 0 ? p[SUM]! / count : x;
  p[SUM] = p[SUM]! + x;
  p[ABSOLUTE] = p[ABSOLUTE]! + (x > expected ? x - expected : expected - x);
  p[COUNT] = count + 1;
}

/** Offset of the numbers of slot index i (day type × slots + slot of day). */
function slotAt(i: number): number {
  return HEADER + PER_SLOT * i;
}

function indexOfSlot(slot: number, config: ProfileConfig): number {
  const day = Math.floor(slot / config.slots);
  return dayTypeOfDay(day) * config.slots + (slot - day * config.slots);
}

function fold(p: ProfileState, config: ProfileConfig): void {
  const o = slotAt(p[INDEX]!);
  const count = p[COUNT]!;
  const dayMean = p[SUM]! / count;
  const dayDeviation = p[ABSOLUTE]! / count;
  const days = p[o + DAYS]!;
  if (days === 0) {
    p[o + MEAN] = dayMean;
    p[o + DEVIATION] = dayDeviation;
  } else {
    // Plain average over the first days, then an EWMA: early days are not overweighted.
    const weight = Math.max(config.dayWeight, 1 / (days + 1));
    p[o + MEAN] = p[o + MEAN]! + weight * (dayMean - p[o + MEAN]!);
    // A first day with no spread (one reading in the slot, as from a half-hourly meter) told
    // nothing about the deviation: the second day's is taken whole instead of halved.
    const deviation = p[o + DEVIATION]!;
    p[o + DEVIATION] = days === 1 && deviation === 0 ? dayDeviation : deviation + weight * (dayDeviation - deviation);
  }
  p[o + DAYS] = days < DAY_CAP ? days + 1 : DAY_CAP;
}

/**
 * What the profile expects at the reading's time, in its EXPECTED_… numbers: the slot of the
 * reading's own day type when learned (≥ minDays), else with `borrow` the other day type's
 * (EXPECTED_BORROWED = 1), else nothing (returns false). Computed once per slot: later readings
 * of the slot reuse it, so today's readings never move the expectation they are judged against.
 */
export function profileLookup(p: ProfileState, config: ProfileConfig, reading: Reading): boolean {
  const slot = Math.floor((reading.time + config.offsetMs) / config.slotMs);
  if (slot === p[EXPECTED_SLOT]) return p[EXPECTED_FOUND] === 1;
  p[EXPECTED_SLOT] = slot;
  p[EXPECTED_FOUND] = 0;
  const day = Math.floor(slot / config.slots);
  const slotOfDay = slot - day * config.slots;
  const ownType = dayTypeOfDay(day);
  p[EXPECTED_DAY_TYPE] = ownType;
  p[EXPECTED_SLOT_OF_DAY] = slotOfDay;
  let type = ownType;
  if (p[slotAt(type * config.slots + slotOfDay) + DAYS]! < config.minDays) {
    if (!config.borrow) return false;
    type = 1 - ownType;
    if (p[slotAt(type * config.slots + slotOfDay) + DAYS]! < config.minDays) return false;
  }
  const base = type * config.slots;
  const o = slotAt(base + slotOfDay);
  let low = p[o + MEAN]!;
  let high = low;
  for (let shift = -config.shiftSlots; shift <= config.shiftSlots; shift++) {
    if (shift === 0) continue;
    let j = slotOfDay + shift;
    if (j < 0) j += config.slots;
    else if (j >= config.slots) j -= config.slots;
    const other = slotAt(base + j);
    if (p[other + DAYS]! < config.minDays) continue;
    const m = p[other + MEAN]!;
    if (m < low) low = m;
    if (m > high) high = m;
  }
  p[EXPECTED_FOUND] = 1;
  p[EXPECTED_LOW] = low;
  p[EXPECTED_HIGH] = high;
  p[EXPECTED_MEAN] = p[o + MEAN]!;
  p[EXPECTED_DEVIATION] = p[o + DEVIATION]!;
  p[EXPECTED_DAYS] = p[o + DAYS]!;
  p[EXPECTED_BORROWED] = type === ownType ? 0 : 1;
  return true;
}

/** "weekday 18:15–18:30, learned over 5 days" for an explanation, from the latest lookup. */
export function describeSlot(config: ProfileConfig, p: ProfileState): string {
  const start = p[EXPECTED_SLOT_OF_DAY]! * config.slotMs;
  const clock = (ms: number) => {
    const minutes = Math.round(ms / 60_000) % 1440;
    return `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
  };
  const dayType = p[EXPECTED_DAY_TYPE];
  const days = p[EXPECTED_DAYS]!;
  const type = dayType === 1 ? 'weekend' : 'weekday';
  const borrowed = p[EXPECTED_BORROWED] === 1 ? ` (borrowed from the ${dayType === 1 ? 'weekday' : 'weekend'} profile)` : '';
  return `${type} ${clock(start)}–${clock(start + config.slotMs)}${borrowed}, learned over ${formatNumber(days)} day${days === 1 ? '' : 's'}`;
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
  const o = slotAt(indexOfSlot(slot, config));
  return p[o + DAYS]! >= config.minDays ? p[o + MEAN]! : Number.NaN;
}
