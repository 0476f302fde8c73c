/**
 * Checkpoint codec for detector states. States are plain objects, arrays and numbers, plus
 * Float64Arrays where a detector needs fast block moves (iqr). `JSON.stringify` would turn a
 * Float64Array into an object with numbered keys and NaN into null, so a checkpoint writes
 * `detectorStateToJson(state)` and reads back with `detectorStateFromJson(json)`: typed arrays
 * become `{ "$f64": [...] }` and non-finite numbers (and −0) `{ "$num": "NaN" }`.
 *
 * The engine's checkpoint (`StreamEngine.snapshot`) packs the states of every device itself,
 * more compactly; it falls back to this same codec (which lives in the engine, below detectors)
 * for a state whose shape differs from its detector's `createState()`.
 */
import { plainStateFromJson, plainStateToJson } from '../engine/index.js';

/**
 * A JSON-safe copy of a detector state.
 *
 * @example
 * const text = JSON.stringify(detectorStateToJson(state));
 * const again = detectorStateFromJson(JSON.parse(text)); // deep-equal to state
 */
export function detectorStateToJson(state: unknown): unknown {
  return plainStateToJson(state);
}

/** The state a `detectorStateToJson` copy came from. */
export function detectorStateFromJson(json: unknown): unknown {
  return plainStateFromJson(json);
}
