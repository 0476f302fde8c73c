import { createHash, timingSafeEqual } from 'node:crypto';
import type { ServerConfig } from '../config/index.js';
import { ApiError } from './errors.js';
import type { IngestAuth } from './platform.js';

/** The principal given to the platform in open mode. */
export const OPEN_PRINCIPAL = 'open';

/** The reason the platform gives for an item whose key the caller's token may not write. */
export const DEVICE_NOT_ALLOWED = 'device not allowed for this token';

interface KnownToken {
  readonly hash: Buffer;
  readonly auth: IngestAuth;
}

/**
 * Checks `Authorization: Bearer <token>` against the configured tokens, of which only the
 * SHA-256 is known. Every configured hash is compared (in constant time) whatever matches, so
 * the time taken says nothing about which token came close.
 */
export interface Authenticator {
  readonly mode: 'open' | 'tokens';
  /** The caller's principal and allowed keys; throws a 401 `ApiError` in token mode when the token is missing or unknown. */
  authenticate(authorization: string | undefined): IngestAuth;
}

/** SHA-256 of a token as 64 lowercase hex digits (what the config stores). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function createAuthenticator(server: ServerConfig): Authenticator {
  const open: IngestAuth = { principal: OPEN_PRINCIPAL, keys: undefined };
  const tokens: KnownToken[] = server.auth.tokens.map((token) => ({
    hash: Buffer.from(token.sha256, 'hex'),
    auth: { principal: token.name, keys: token.keys === undefined ? undefined : new Set(token.keys) },
  }));
  const challenge = { 'www-authenticate': 'Bearer realm="gridpulse"' };
  return {
    mode: server.auth.mode,
    authenticate(authorization) {
      if (server.auth.mode === 'open') return open;
      if (authorization === undefined || authorization.trim() === '') {
        throw new ApiError(401, 'GP_AUTH_REQUIRED', 'Authorization: expected "Bearer <token>", got nothing', {
          field: 'Authorization',
          expected: 'Bearer <token>',
          got: 'nothing',
          headers: challenge,
        });
      }
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (match === null) {
        throw new ApiError(401, 'GP_AUTH_REQUIRED', 'Authorization: expected "Bearer <token>", got another scheme or a malformed header', {
          field: 'Authorization',
          expected: 'Bearer <token>',
          got: 'a malformed header',
          headers: challenge,
        });
      }
      const presented = createHash('sha256').update(match[1] ?? '', 'utf8').digest();
      let found: IngestAuth | undefined;
      for (const token of tokens) {
        if (token.hash.length === presented.length && timingSafeEqual(token.hash, presented) && found === undefined) found = token.auth;
      }
      if (found === undefined) {
        throw new ApiError(401, 'GP_AUTH_REQUIRED', 'Authorization: the bearer token is not valid', {
          field: 'Authorization',
          expected: 'a configured device token',
          got: 'an unknown token',
          headers: challenge,
        });
      }
      return found;
    },
  };
}
