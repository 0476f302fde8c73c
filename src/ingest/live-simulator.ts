import { GpError } from '../model/index.js';
import { MachineModel, machineLine, type MachineProfile } from './simulator-machines.js';
import type { ScheduledAnomaly } from './simulator-anomalies.js';
import { simulateLines } from './simulator.js';

const WEEK_MS = 7 * 86_400_000;
/** About this many anomalies of all types per device and week at anomaly rate 1 (3–6 of each of ~8 types). */
const ANOMALIES_PER_DEVICE_WEEK = 36;
const TICK_MS = 1000;

export type MachineSessionProfile = 'normal' | 'overstrain' | 'heat_dissipation';
export const MACHINE_SESSION_PROFILES: readonly MachineSessionProfile[] = ['normal', 'overstrain', 'heat_dissipation'];

export interface LiveSimulatorOptions {
  meters: number;
  machines: number;
  intervalMs: number;
  /** Mean time between injected anomalies over the whole fleet. */
  anomalyEveryMs: number;
  seed: number;
  /** History generated at start, before the live readings, so detectors have baselines (0: none). */
  backfillMs: number;
  /** Fleet readings at or before this time are not sent (they were sent before a restart). */
  skipUntil?: number;
  /** Wall clock (epoch ms). */
  clock: () => number;
  /** Receives lines in arrival order; the next batch waits until this resolves. */
  emit: (lines: string[]) => Promise<void>;
  /** Told about an `emit` that failed (the lines are retried on the next tick). */
  onError?: (error: unknown) => void;
}

export interface MachineSession {
  machineId: string;
  profile: MachineSessionProfile;
  startedAt: number;
  endsAt: number;
}

export interface LiveSimulatorStats {
  running: boolean;
  meters: number;
  machines: number;
  sessions: number;
  lines: number;
}

/**
 * The built-in simulator in real time: the fleet of `simulateLines` (meters and machines with
 * injected anomalies), released as the wall clock passes each reading's timestamp, plus machines
 * started on demand with a chosen profile (`startMachine`). `start()` first generates
 * `backfillMs` of history at full speed, so that a first run shows data and alerts at once.
 *
 * @example
 * const sim = createLiveSimulator({ meters: 200, machines: 20, intervalMs: 5000, anomalyEveryMs: 20_000,
 *   seed: 1, backfillMs: 3_600_000, clock: Date.now, emit: (lines) => platform.ingestLines(lines) });
 * await sim.start();
 * sim.startMachine('press-7', 'overstrain', 120);
 * await sim.stop();
 */
export interface LiveSimulator {
  start(): Promise<void>;
  startMachine(machineId: string, profile: MachineSessionProfile, durationSec: number): MachineSession;
  stats(): LiveSimulatorStats;
  stop(): Promise<void>;
}

export function createLiveSimulator(options: LiveSimulatorOptions): LiveSimulator {
  const { intervalMs, clock } = options;
  const devices = options.meters + options.machines;
  const now0 = clock();
  const start = Math.floor((now0 - options.backfillMs) / intervalMs) * intervalMs;
  const anomalyRate = devices === 0 ? 0 : Math.min(50, WEEK_MS / (options.anomalyEveryMs * devices * ANOMALIES_PER_DEVICE_WEEK));
  // One simulated week at a time (the simulator plans each device's anomalies for its whole run);
  // the next week starts where the last one ended, with the next seed.
  const WEEK_DAYS = 7;
  let runs = 0;
  const fleetFrom = (from: number): Iterator<string> | undefined =>
    devices === 0
      ? undefined
      : simulateLines({
          meters: options.meters,
          machines: options.machines,
          seed: options.seed + runs++,
          intervalMs,
          start: from,
          days: WEEK_DAYS,
          anomalyRate,
          // Anomalies begin halfway through the backfilled history, or after five minutes live.
          warmupMs: Math.max(5 * 60_000, options.backfillMs / 2),
        }).lines[Symbol.iterator]();
  let fleet = fleetFrom(start);
  let fleetEnd = start + WEEK_DAYS * 86_400_000;

  const skipUntil = options.skipUntil ?? Number.NEGATIVE_INFINITY;
  let next: { line: string; time: number } | undefined;
  let lastTime = start;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let busy: Promise<void> | undefined;
  let lines = 0;
  const retry: string[] = [];
  const sessions = new Map<string, { session: MachineSession; model: MachineModel; profile: MachineProfile; nextTime: number; wear: number }>();

  const timeOf = (line: string): number => {
    try {
      const parsed = JSON.parse(line) as { timestamp?: unknown };
      const time = typeof parsed.timestamp === 'string' ? Date.parse(parsed.timestamp) : Number(parsed.timestamp);
      return Number.isFinite(time) ? time : lastTime;
    } catch {
      return lastTime; // a malformed line arrives where it stands
    }
  };

  /** Fleet lines due by `until`, without the machines that run an on-demand session. */
  const due = (until: number, max: number): string[] => {
    const out: string[] = [];
    while (fleet !== undefined && out.length < max) {
      if (next === undefined) {
        const step = fleet.next();
        if (step.done === true) {
          fleet = fleetFrom(fleetEnd);
          fleetEnd += WEEK_DAYS * 86_400_000;
          continue;
        }
        // Lines come in arrival order: a regular reading arrives at its timestamp, which is at most
        // an interval after the one before; anything else (late, duplicate, or a malformed line
        // whose timestamp is far off) arrives where it stands.
        next = { line: step.value, time: Math.min(timeOf(step.value), lastTime + intervalMs) };
      }
      if (next.time > until) break;
      lastTime = Math.max(lastTime, next.time);
      if (!sessionOwns(next.line) && !(next.time <= skipUntil)) out.push(next.line);
      next = undefined;
    }
    return out;
  };
  const sessionOwns = (line: string): boolean => {
    if (sessions.size === 0) return false;
    for (const id of sessions.keys()) if (line.includes(`"machine_id":"${id}"`)) return true;
    return false;
  };

  const sessionLines = (now: number): string[] => {
    const out: string[] = [];
    for (const [id, s] of sessions) {
      while (s.nextTime <= Math.min(now, s.session.endsAt)) {
        const episode =
          s.session.profile === 'normal' ? undefined : ({ type: s.session.profile, targets: [] } as unknown as ScheduledAnomaly);
        s.wear += intervalMs / 60_000;
        out.push(machineLine(s.profile, s.nextTime, s.model.next(s.nextTime, s.wear, episode)));
        s.nextTime += intervalMs;
      }
      if (s.nextTime > s.session.endsAt) sessions.delete(id);
    }
    return out;
  };

  const send = async (batch: string[]): Promise<void> => {
    if (batch.length === 0) return;
    try {
      await options.emit(batch);
      lines += batch.length;
    } catch (error) {
      retry.push(...batch);
      options.onError?.(error);
    }
  };

  const tick = (): void => {
    if (!running || busy !== undefined) return;
    const now = clock();
    const batch = [...retry.splice(0), ...due(now, 100_000), ...sessionLines(now)];
    busy = send(batch).finally(() => {
      busy = undefined;
    });
  };

  return {
    async start() {
      if (running) return;
      running = true;
      // Backfill in slices so that memory stays flat and progress reaches the store steadily.
      for (;;) {
        const batch = due(clock(), 5000);
        if (batch.length === 0) break;
        await send(batch);
        if (!running) return;
      }
      timer = setInterval(tick, TICK_MS);
      timer.unref();
    },
    startMachine(machineId, profile, durationSec) {
      if (!MACHINE_SESSION_PROFILES.includes(profile)) {
        throw new GpError('GP_INPUT_INVALID', `profile: expected one of ${MACHINE_SESSION_PROFILES.join(', ')}, got "${String(profile)}"`);
      }
      if (!Number.isFinite(durationSec) || durationSec <= 0 || durationSec > 86_400) {
        throw new GpError('GP_INPUT_INVALID', `duration_sec: expected a number of seconds from 1 to 86400, got ${String(durationSec)}`);
      }
      const now = clock();
      const index = hashIndex(machineId);
      const session: MachineSession = { machineId, profile, startedAt: now, endsAt: now + durationSec * 1000 };
      const profileOf: MachineProfile = { index, machineId, phaseMs: 0, initialWear: 20 };
      sessions.set(machineId, {
        session,
        model: new MachineModel(options.seed, index, intervalMs),
        profile: profileOf,
        nextTime: Math.ceil(now / 1000) * 1000,
        wear: profileOf.initialWear,
      });
      return { ...session };
    },
    stats() {
      return { running, meters: options.meters, machines: options.machines, sessions: sessions.size, lines };
    },
    async stop() {
      running = false;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await busy;
    },
  };
}

function hashIndex(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0) % 100_000;
}
