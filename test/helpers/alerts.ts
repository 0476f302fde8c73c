// Shared by the alert manager tests: a clock origin, a default policy, a finding builder and a
// manager that records what it emits. Not a test file itself.
import { createAlertManager } from '../../src/alerts/index.js';
import type { AlertEvent, AlertPolicy, Finding } from '../../src/model/index.js';

export const T0 = 1_763_900_000_000;
export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const POLICY: AlertPolicy = { resolveAfterMs: 5 * MINUTE, minDurationMs: 0, cooldownMs: 10 * MINUTE };

/** An active spike finding of meter m-1 at `time`; `extra` overrides any field. */
export function finding(time: number, extra: Partial<Finding> = {}): Finding {
  return {
    stream: 'power',
    key: 'm-1',
    site: 's-1',
    type: 'spike',
    detector: 'spike',
    metric: 'usageKw',
    time,
    score: 0.3,
    severity: 'info',
    value: 20,
    baseline: 10,
    threshold: 15,
    explain: `usageKw 20 kW at ${time}`,
    active: true,
    ...extra,
  };
}

/** A manager with `POLICY` (overridden by `policy`) and the events it emitted, as kinds or as `kind:status`. */
export function setupManager(policy: Partial<AlertPolicy> = {}) {
  const events: AlertEvent[] = [];
  const manager = createAlertManager({ policy: { ...POLICY, ...policy }, emit: (event) => events.push(event) });
  return {
    manager,
    events,
    kinds: () => events.map((e) => e.transition.kind),
    kindsWithStatus: () => events.map((e) => `${e.transition.kind}:${e.transition.status}`),
  };
}
