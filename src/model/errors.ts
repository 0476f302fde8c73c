/**
 * Stable error codes. A code is never reused for a different meaning; retired codes stay
 * listed here as comments. The README's error table is checked against this list by a test.
 */
export const ERROR_CODES = {
  GP_CONFIG_INVALID: 'user',
  GP_CONFIG_NOT_FOUND: 'user',
  GP_INPUT_INVALID: 'user',
  GP_INPUT_UNKNOWN_LAYOUT: 'user',
  GP_FILE_NOT_FOUND: 'user',
  GP_STORE_URL_INVALID: 'user',
  GP_STORE_FAILED: 'external',
  GP_LABELS_INVALID: 'user',
  GP_AUTH_REQUIRED: 'user',
  GP_AUTH_FORBIDDEN: 'user',
  GP_NOT_FOUND: 'user',
  GP_CONFLICT: 'user',
  GP_PAYLOAD_TOO_LARGE: 'user',
  GP_UNSUPPORTED_MEDIA_TYPE: 'user',
  GP_RATE_LIMITED: 'user',
  GP_UNAVAILABLE: 'external',
  GP_LOG_FAILED: 'external',
  GP_LOG_CORRUPT: 'external',
  GP_LOG_GAP: 'external',
  GP_CHECKPOINT_INVALID: 'external',
  GP_MQTT_FAILED: 'external',
  GP_INTERNAL: 'internal',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
/** user: bad input or config (never retried); external: a server or file system failed (may be retried); internal: a bug. */
export type ErrorDomain = (typeof ERROR_CODES)[ErrorCode];

/**
 * The one error class of gridpulse. `details` are plain data that serialize into logs.
 *
 * @example
 * throw new GpError('GP_CONFIG_INVALID', '/streams/power/lateness/allowed: expected duration like "10m", got 5', { path: '/streams/power/lateness/allowed' });
 */
export class GpError extends Error {
  readonly code: ErrorCode;
  readonly domain: ErrorDomain;
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'GpError';
    this.code = code;
    this.domain = ERROR_CODES[code];
    this.details = details;
  }
  get retriable(): boolean {
    return this.domain === 'external';
  }
  toJSON(): Record<string, unknown> {
    return { code: this.code, domain: this.domain, message: this.message, ...this.details };
  }
}
