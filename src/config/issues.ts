import type { TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';

/**
 * One problem found in a config. `path` is a JSON pointer into the config as written
 * (`/streams/power/lateness/allowed`, `""` for the whole document); `message` says what was
 * expected and what was got. `location` is `file:line:column` when the config came from YAML text.
 *
 * @example
 * { path: '/streams/power/lateness/allowed', message: 'expected a duration like "10m" …, got "ten"', location: 'gridpulse.yaml:14:16' }
 */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
  readonly location?: string;
}

/**
 * One line per issue, `path: message`, with the file position when known.
 *
 * @example
 * formatIssues([{ path: '/engine/partitions', message: 'expected a whole number from 1 to 1024, got 0' }]);
 * // "/engine/partitions: expected a whole number from 1 to 1024, got 0"
 */
export function formatIssues(issues: readonly ConfigIssue[]): string {
  return issues
    .map((issue) => `${issue.path === '' ? '(whole file)' : issue.path}: ${issue.message}${issue.location === undefined ? '' : ` (${issue.location})`}`)
    .join('\n');
}

/** Appends a key or index to a JSON pointer, escaping `~` and `/` as RFC 6901 asks. */
export function pointer(base: string, ...segments: readonly (string | number)[]): string {
  return segments.reduce<string>((path, segment) => `${path}/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`, base);
}

/** Splits a JSON pointer into its unescaped segments. */
export function pointerSegments(path: string): string[] {
  if (path === '') return [];
  return path
    .slice(1)
    .split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** A short description of a value for "got …" in messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : `a list of ${value.length}`;
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return typeof value;
}

/**
 * Structural check of `value` against a TypeBox schema, as issues under `basePath`. Unions are
 * resolved by the kind of value (a mapping is checked against the mapping form, a list against
 * the list form), so that a typo deep inside a stream is reported where it is, not as "no
 * alternative matched" at the stream.
 */
export function schemaIssues(schema: TSchema, value: unknown, basePath = ''): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  // TypeBox reports a missing required key twice: as missing, then as an undefined of the wrong type.
  const missing = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    if (missing.has(error.path)) continue;
    if (error.type === ValueErrorType.ObjectRequiredProperty) missing.add(error.path);
    for (const issue of issuesOfError(error, basePath)) {
      const identity = `${issue.path}\n${issue.message}`;
      if (seen.has(identity)) continue;
      seen.add(identity);
      issues.push(issue);
    }
  }
  return issues;
}

function issuesOfError(error: ValueError, basePath: string): ConfigIssue[] {
  const path = basePath + error.path;
  const schema = error.schema as TSchema & { expected?: string };
  if (error.type === ValueErrorType.Union) {
    const variants = ((schema as { anyOf?: TSchema[] }).anyOf ?? []).filter((variant) => variantAccepts(variant, error.value));
    const only = variants[0];
    if (variants.length === 1 && only !== undefined) return schemaIssues(only, error.value, path);
  }
  if (error.type === ValueErrorType.ObjectAdditionalProperties) {
    const known = Object.keys((schema as { properties?: Record<string, unknown> }).properties ?? {});
    const key = pointerSegments(error.path).at(-1) ?? '';
    const suggestion = closest(key, known);
    const hint = suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`;
    return [{ path, message: `expected one of the keys ${known.join(', ')}, got unknown key ${JSON.stringify(key)}${hint}` }];
  }
  const expected = schema.expected ?? genericExpectation(error.type, schema);
  const got = error.type === ValueErrorType.ObjectRequiredProperty ? 'nothing (this key is required)' : describeValue(error.value);
  return [{ path, message: `expected ${expected}, got ${got}` }];
}

/** Whether a union variant is the one meant for a value of this kind. */
function variantAccepts(variant: TSchema, value: unknown): boolean {
  const type = (variant as { type?: unknown }).type;
  if (value === null) return type === 'null';
  if (Array.isArray(value)) return type === 'array';
  if (typeof value === 'object') return type === 'object';
  if (typeof value === 'number') return type === 'number' || type === 'integer';
  return type === typeof value;
}

function genericExpectation(type: ValueErrorType, schema: TSchema): string {
  const bounds = schema as { minimum?: number; maximum?: number; minLength?: number; const?: unknown };
  switch (type) {
    case ValueErrorType.String:
      return 'text';
    case ValueErrorType.StringMinLength:
      return bounds.minLength === 1 ? 'non-empty text' : `text of at least ${bounds.minLength} characters`;
    case ValueErrorType.Number:
      return 'a number';
    case ValueErrorType.Integer:
      return 'a whole number';
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return `a number ≥ ${bounds.minimum}`;
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return `a number ≤ ${bounds.maximum}`;
    case ValueErrorType.Boolean:
      return 'true or false';
    case ValueErrorType.Object:
      return 'a mapping';
    case ValueErrorType.Array:
      return 'a list';
    case ValueErrorType.Null:
      return 'an empty value';
    case ValueErrorType.Literal:
      return JSON.stringify(bounds.const);
    default:
      return 'a value of another form';
  }
}

/** The known name nearest to a misspelt one (case-insensitive, at most two edits, fewer than half its letters), if any. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    // A suggestion must share most of the word: "c" is not a typo of "a".
    if (distance < bestDistance && distance * 2 < word.length) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
