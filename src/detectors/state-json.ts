/**
 * Checkpoint codec for detector states. States are plain objects, arrays and numbers, plus
 * Float64Arrays where a detector needs fast block moves (iqr). `JSON.stringify` would turn a
 * Float64Array into an object with numbered keys and NaN into null, so a checkpoint writes
 * `detectorStateToJson(state)` and reads back with `detectorStateFromJson(json)`: typed arrays
 * become `{ "$f64": [...] }` and non-finite numbers `{ "$num": "NaN" }`.
 */

/**
 * A JSON-safe copy of a detector state.
 *
 * @example
 * const text = JSON.stringify(detectorStateToJson(state));
 * const again = detectorStateFromJson(JSON.parse(text)); // deep-equal to state
 */
export function detectorStateToJson(state: unknown): unknown {
  if (typeof state === 'number') return Number.isFinite(state) ? state : { $num: String(state) };
  if (state instanceof Float64Array) return { $f64: Array.from(state, (x) => (Number.isFinite(x) ? x : String(x))) };
  if (Array.isArray(state)) return state.map(detectorStateToJson);
  if (state !== null && typeof state === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(state)) out[key] = detectorStateToJson(value);
    return out;
  }
  return state;
}

/** The state a `detectorStateToJson` copy came from. */
export function detectorStateFromJson(json: unknown): unknown {
  if (Array.isArray(json)) return json.map(detectorStateFromJson);
  if (json !== null && typeof json === 'object') {
    const record = json as Record<string, unknown>;
    if (Array.isArray(record.$f64)) return Float64Array.from(record.$f64 as unknown[], (x) => (typeof x === 'number' ? x : Number(x)));
    if (typeof record.$num === 'string' && Object.keys(record).length === 1) return Number(record.$num);
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(record)) out[key] = detectorStateFromJson(value);
    return out;
  }
  return json;
}
