import type { Alert, AlertTransition } from '../model/index.js';

// Response serialization (fast-json-stringify) refuses NaN; the records may carry it where a
// value is unknown. These copies turn every non-finite number into null.

export function finiteOrNull(value: number | null | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

export function safeNumberMap(map: Readonly<Record<string, number | null>>): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const [name, value] of Object.entries(map)) out[name] = finiteOrNull(value);
  return out;
}

export type AlertJson = Omit<Alert, 'score' | 'peakScore' | 'value'> & { score: number | null; peakScore: number | null; value: number | null };

export function safeAlert(alert: Alert): AlertJson {
  return { ...alert, score: finiteOrNull(alert.score), peakScore: finiteOrNull(alert.peakScore), value: finiteOrNull(alert.value) };
}

export function safeTransition(transition: AlertTransition): Omit<AlertTransition, 'score'> & { score: number | null } {
  return { ...transition, score: finiteOrNull(transition.score) };
}
