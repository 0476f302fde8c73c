import { createHmac } from 'node:crypto';
import { GpError } from '../../model/index.js';

const SECRET_PREFIX = 'whsec_';
/** Standard Webhooks: a symmetric signing secret is 24 to 64 random bytes. */
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

/** The three Standard Webhooks headers of one attempt. */
export interface WebhookSignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * The key of a Standard Webhooks secret (`whsec_` + base64 of 24 to 64 bytes). Throws
 * GP_CONFIG_INVALID naming `field` — without echoing the secret — when it is not one.
 */
export function webhookSecretKey(secret: string, field = 'secret'): Buffer {
  const expected = `a Standard Webhooks secret like "whsec_" followed by base64 of ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} random bytes`;
  if (typeof secret !== 'string' || !secret.startsWith(SECRET_PREFIX)) {
    throw new GpError('GP_CONFIG_INVALID', `${field}: expected ${expected}, got ${typeof secret === 'string' ? 'text without the "whsec_" prefix' : typeof secret}`, { field });
  }
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (encoded.length === 0 || encoded.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) {
    throw new GpError('GP_CONFIG_INVALID', `${field}: expected ${expected}, got "whsec_" followed by text that is not base64`, { field });
  }
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    throw new GpError('GP_CONFIG_INVALID', `${field}: expected ${expected}, got a secret of ${key.length} bytes`, { field });
  }
  return key;
}

/**
 * Signs one attempt the Standard Webhooks way (spec 1.0.0, symmetric): the signed content is
 * `${id}.${timestamp}.${body}`, the signature `v1,` + base64(HMAC-SHA256(key, content)), one per
 * key, space-separated (the current secret first, then those kept during a rotation).
 * `timestampSeconds` is whole seconds since the epoch; the id must not contain a full stop.
 *
 * @example
 * signWebhook('al_0123456789abcdef:0', 1763900000, '{"id":"al_0123456789abcdef:0"}', [webhookSecretKey(secret)]);
 * // { 'webhook-id': 'al_0123456789abcdef:0', 'webhook-timestamp': '1763900000', 'webhook-signature': 'v1,K5oZ…=' }
 */
export function signWebhook(id: string, timestampSeconds: number, body: string, keys: readonly Buffer[]): WebhookSignatureHeaders {
  // The spec forbids "." in the id and timestamp: it would make the signed content ambiguous.
  if (id === '' || id.includes('.')) {
    throw new GpError('GP_INPUT_INVALID', `webhook-id: expected an id without ".", got ${JSON.stringify(id)}`, { field: 'webhook-id' });
  }
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new GpError('GP_INPUT_INVALID', `webhook-timestamp: expected whole seconds since the epoch, got ${timestampSeconds}`, { field: 'webhook-timestamp' });
  }
  const content = `${id}.${timestampSeconds}.${body}`;
  const signatures = keys.map((key) => `v1,${createHmac('sha256', key).update(content, 'utf8').digest('base64')}`);
  return { 'webhook-id': id, 'webhook-timestamp': String(timestampSeconds), 'webhook-signature': signatures.join(' ') };
}
