import { Type, type TObject, type TSchema, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * Parameter schemas of the detectors. Each detector declares its parameters once as a TypeBox
 * object with defaults; this file fills the defaults in and turns a bad value into a message
 * that names what was expected and what was got (`expected number ≥ 0, got "abc"`).
 */

/** One problem found in a detector spec, with a JSON-pointer path into the config. */
export interface SpecIssue {
  path: string;
  message: string;
}

const DURATION_PATTERN = '^\\s*(\\d+(\\.\\d+)?\\s*(ms|s|m|h|d|w)\\s*)+$';
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * A duration parameter: milliseconds as a number, or a text like `"30m"`, `"1h30m"`, `"500ms"`.
 *
 * @example
 * Type.Object({ halfLife: DurationParam('30m', 'Half-life of the baseline.') })
 */
export function DurationParam(defaultValue: string, description: string): TSchema {
  return Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
    default: defaultValue,
    description,
    expected: 'duration like "30m" or a number of milliseconds',
  });
}

/** The same as `DurationParam` without a default (the parameter may be left out). */
export function OptionalDurationParam(description: string): TSchema {
  return Type.Optional(
    Type.Union([Type.Number({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
      description,
      expected: 'duration like "30m" or a number of milliseconds',
    }),
  );
}

/**
 * Milliseconds of a duration parameter (number = ms, or a text like `"1h30m"`). NaN when the
 * value is not a duration.
 *
 * @example
 * parseDuration('1h30m'); // 5400000
 */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number') return value >= 0 ? value : Number.NaN;
  if (typeof value !== 'string' || !new RegExp(DURATION_PATTERN).test(value)) return Number.NaN;
  let total = 0;
  for (const match of value.matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)/g)) {
    total += Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] ?? 1);
  }
  return total;
}

/**
 * The parameters of a spec merged with the detector's defaults. Assumes they were validated
 * (`validateParams`); a value of the wrong type is replaced by the default rather than thrown on.
 *
 * @example
 * resolveParams(spikeParams, { threshold: 0.5 }).halfLife; // '30m'
 */
export function resolveParams<T extends TObject>(schema: T, params: Readonly<Record<string, unknown>>): Static<T> {
  const merged: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(schema.properties)) {
    const given = params[name];
    const fallback = (property as { default?: unknown }).default;
    if (given !== undefined && Value.Check(property, given)) merged[name] = given;
    else if (fallback !== undefined) merged[name] = Value.Clone(fallback);
  }
  return merged;
}

/**
 * Checks parameters against a detector's schema: unknown names, missing required ones and
 * values of the wrong type or range. Paths are `${basePath}/<name>`.
 *
 * @example
 * validateParams(spikeParams, { threshold: 'abc' }, '/streams/power/detectors/0/params');
 * // [{ path: '/streams/power/detectors/0/params/threshold', message: 'expected number ≥ 0, got "abc"' }]
 */
export function validateParams(schema: TObject, params: unknown, basePath: string): SpecIssue[] {
  if (params === undefined || params === null) params = {};
  if (typeof params !== 'object' || Array.isArray(params)) {
    return [{ path: basePath, message: `expected an object of parameters, got ${describeValue(params)}` }];
  }
  const issues: SpecIssue[] = [];
  const given = params as Record<string, unknown>;
  const known = Object.keys(schema.properties);
  for (const name of Object.keys(given)) {
    if (!known.includes(name)) {
      issues.push({ path: `${basePath}/${name}`, message: `unknown parameter; expected one of: ${known.join(', ')}` });
    }
  }
  const required = new Set(schema.required ?? []);
  for (const name of known) {
    const property = schema.properties[name] as TSchema;
    const value = given[name];
    if (value === undefined) {
      if (required.has(name) && (property as { default?: unknown }).default === undefined) {
        issues.push({ path: `${basePath}/${name}`, message: `required: expected ${describeSchema(property)}` });
      }
      continue;
    }
    if (!Value.Check(property, value)) {
      issues.push({ path: `${basePath}/${name}`, message: `expected ${describeSchema(property)}, got ${describeValue(value)}` });
    }
  }
  return issues;
}

/** A value as it appears in a message: strings quoted, objects as JSON. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') return typeof value;
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}

function describeSchema(schema: TSchema): string {
  const s = schema as Record<string, unknown>;
  if (typeof s.expected === 'string') return s.expected;
  if (Array.isArray(s.anyOf)) {
    const options = s.anyOf as TSchema[];
    if (options.every((o) => (o as { const?: unknown }).const !== undefined)) {
      return `one of ${options.map((o) => JSON.stringify((o as { const?: unknown }).const)).join(', ')}`;
    }
    return options.map(describeSchema).join(' or ');
  }
  if (s.const !== undefined) return JSON.stringify(s.const);
  const type = s.type;
  if (type === 'number' || type === 'integer') {
    const noun = type === 'integer' ? 'integer' : 'number';
    const lower = typeof s.exclusiveMinimum === 'number' ? `> ${s.exclusiveMinimum}` : typeof s.minimum === 'number' ? `≥ ${s.minimum}` : '';
    const upper = typeof s.exclusiveMaximum === 'number' ? `< ${s.exclusiveMaximum}` : typeof s.maximum === 'number' ? `≤ ${s.maximum}` : '';
    if (lower && upper) return `${noun} ${lower} and ${upper}`;
    return `${noun}${lower ? ` ${lower}` : ''}${upper ? ` ${upper}` : ''}`;
  }
  if (type === 'string') return typeof s.minLength === 'number' && s.minLength > 0 ? 'non-empty text' : 'text';
  if (type === 'boolean') return 'true or false';
  if (type === 'array') return 'a list';
  if (type === 'object') return 'an object';
  return 'a valid value';
}
