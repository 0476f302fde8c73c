import type { FastifyError } from 'fastify';
import { GpError, type ErrorCode } from '../model/index.js';

/** The codes of src/model's ERROR_CODES; the HTTP status of each is in the README's error table. */
export type ApiErrorCode = ErrorCode;

/** What every error response carries under `error`. */
export interface ApiErrorBody {
  code: ApiErrorCode;
  message: string;
  field?: string;
  expected?: string;
  got?: string;
}

export interface ApiErrorDetails {
  field?: string | undefined;
  expected?: string | undefined;
  got?: string | undefined;
  /** Extra response headers (Retry-After, WWW-Authenticate). */
  headers?: Record<string, string> | undefined;
}

/**
 * An error with its HTTP status and stable code, thrown by routes and turned into
 * `{ error: { code, message, field?, expected?, got? } }` by the app's error handler.
 *
 * @example
 * throw new ApiError(404, 'GP_NOT_FOUND', 'stream: expected one of power, machines, got "gas"', { field: 'stream' });
 */
export class ApiError extends Error {
  readonly statusCode: number;
  readonly code: ApiErrorCode;
  readonly details: ApiErrorDetails;
  constructor(statusCode: number, code: ApiErrorCode, message: string, details: ApiErrorDetails = {}) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = statusCode;
    this.code = code;
    this.details = details;
  }
}

/** Like `invalidInput`, with `got` already in words ("an empty body"). */
export function invalidInputDescribed(field: string, expected: string, got: string, status = 400): ApiError {
  return new ApiError(status, 'GP_INPUT_INVALID', `${field}: expected ${expected}, got ${got}`, { field, expected, got });
}

/** The error for a value that is not what was expected: `field: expected X, got Y`. */
export function invalidInput(field: string, expected: string, got: unknown, status = 400): ApiError {
  const shown = describeGot(got);
  return new ApiError(status, 'GP_INPUT_INVALID', `${field}: expected ${expected}, got ${shown}`, { field, expected, got: shown });
}

export function notFound(what: string, field: string | undefined, got: string): ApiError {
  return new ApiError(404, 'GP_NOT_FOUND', `${what} not found: ${JSON.stringify(got)}`, { field, got: JSON.stringify(got) });
}

const MAX_GOT_CHARS = 120;

/** A short, printable rendering of a bad value for messages (never the whole of a large body). */
export function describeGot(value: unknown): string {
  let text: string;
  if (value === undefined) text = 'nothing';
  else if (typeof value === 'string') text = JSON.stringify(value);
  else if (typeof value === 'number' || typeof value === 'boolean' || value === null) text = String(value);
  else {
    try {
      text = JSON.stringify(value) ?? Object.prototype.toString.call(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > MAX_GOT_CHARS ? `${text.slice(0, MAX_GOT_CHARS)}… (${text.length} characters)` : text;
}

const CODE_BY_STATUS: Record<number, ApiErrorCode> = {
  400: 'GP_INPUT_INVALID',
  401: 'GP_AUTH_REQUIRED',
  403: 'GP_AUTH_FORBIDDEN',
  404: 'GP_NOT_FOUND',
  409: 'GP_CONFLICT',
  413: 'GP_PAYLOAD_TOO_LARGE',
  415: 'GP_UNSUPPORTED_MEDIA_TYPE',
  429: 'GP_RATE_LIMITED',
  503: 'GP_UNAVAILABLE',
};

const STATUS_BY_CODE = new Map<ErrorCode, number>(Object.entries(CODE_BY_STATUS).map(([status, code]) => [code, Number(status)]));
STATUS_BY_CODE.delete('GP_INPUT_INVALID');

interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
  data?: unknown;
  parentSchema?: Record<string, unknown>;
}

/** Fastify's schema errors (ajv) → one 400 naming the field, what was expected and what was got. */
function fromValidation(validation: readonly AjvError[], validationContext: string | undefined, message: string): ApiError {
  // Within anyOf, ajv lists each branch's error first and the anyOf last: the last says more.
  const first = validation.find((e) => e.keyword === 'anyOf') ?? validation[0];
  const context = validationContext ?? 'request';
  if (first === undefined) return new ApiError(400, 'GP_INPUT_INVALID', message);
  let path = first.instancePath.replace(/^\//, '').replace(/\//g, '.');
  let expected: string;
  let got: unknown = first.data;
  const params = first.params;
  switch (first.keyword) {
    case 'required':
      path = path === '' ? String(params['missingProperty']) : `${path}.${String(params['missingProperty'])}`;
      expected = 'a value';
      got = undefined;
      break;
    case 'additionalProperties':
      path = path === '' ? String(params['additionalProperty']) : `${path}.${String(params['additionalProperty'])}`;
      expected = 'no such property';
      got = 'an unknown property';
      return new ApiError(400, 'GP_INPUT_INVALID', `${path}: unknown property`, { field: path, expected, got: String(got) });
    case 'type':
      expected = typeName(String(params['type']));
      break;
    case 'enum':
      expected = `one of ${(params['allowedValues'] as unknown[]).map(String).join(', ')}`;
      break;
    case 'const':
      expected = JSON.stringify(params['allowedValue']);
      break;
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      expected = `a number ${String(params['comparison'])} ${String(params['limit'])}`;
      break;
    case 'minLength':
      expected = `at least ${String(params['limit'])} characters`;
      break;
    case 'maxLength':
      expected = `at most ${String(params['limit'])} characters`;
      break;
    case 'minItems':
    case 'maxItems':
      expected = `${first.keyword === 'minItems' ? 'at least' : 'at most'} ${String(params['limit'])} items`;
      break;
    case 'pattern':
      expected = `text matching ${String(params['pattern'])}`;
      break;
    case 'anyOf':
      expected = typeof first.parentSchema?.['description'] === 'string' ? first.parentSchema['description'] : 'one of the allowed forms';
      break;
    default:
      expected = first.message ?? 'a valid value';
  }
  const field = path === '' ? context : path;
  return invalidInput(field, expected, got);
}

function typeName(type: string): string {
  switch (type) {
    case 'integer':
      return 'an integer';
    case 'number':
      return 'a number';
    case 'string':
      return 'text';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a JSON object';
    case 'array':
      return 'a list';
    default:
      return type;
  }
}

/** Maps anything a route or Fastify throws to an `ApiError` (status, stable code, details). */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof GpError) {
    const field = typeof error.details['field'] === 'string' ? error.details['field'] : undefined;
    const status = STATUS_BY_CODE.get(error.code);
    if (status !== undefined) return new ApiError(status, error.code, error.message, { field, ...(status === 503 ? { headers: { 'retry-after': '1' } } : {}) });
    if (error.domain === 'user') return new ApiError(400, error.code, error.message, { field });
    if (error.domain === 'external') return new ApiError(503, error.code, error.message, { headers: { 'retry-after': '1' } });
    return new ApiError(500, error.code, error.message);
  }
  const fastifyError = error as Partial<FastifyError>;
  const validation = (error as { validation?: unknown }).validation;
  if (Array.isArray(validation)) return fromValidation(validation as AjvError[], fastifyError.validationContext, fastifyError.message ?? 'invalid request');
  const status = typeof fastifyError.statusCode === 'number' ? fastifyError.statusCode : 500;
  if (status >= 400 && status < 500) {
    const code = CODE_BY_STATUS[status] ?? 'GP_INPUT_INVALID';
    return new ApiError(status, code, fastifyMessage(fastifyError));
  }
  return new ApiError(500, 'GP_INTERNAL', `internal error: ${error instanceof Error ? error.message : String(error)}`);
}

/** Fastify's own 4xx messages, reworded where they would leak internals or say too little. */
function fastifyMessage(error: Partial<FastifyError>): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return `body: expected a JSON object, got ${error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'an empty body' : 'malformed JSON'}`;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Content-Type: expected a media type this route reads (application/json; ingest also application/x-ndjson)';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'body: larger than this route accepts';
    default:
      return error.message ?? 'bad request';
  }
}

/** The JSON body of an error response. */
export function errorBody(error: ApiError): { error: ApiErrorBody } {
  const body: ApiErrorBody = { code: error.code, message: error.message };
  if (error.details.field !== undefined) body.field = error.details.field;
  if (error.details.expected !== undefined) body.expected = error.details.expected;
  if (error.details.got !== undefined) body.got = error.details.got;
  return { error: body };
}
