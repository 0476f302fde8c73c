import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { GpError } from '../../model/index.js';
import { DEFAULT_RETRY_POLICY, errorMessage, type AttemptContext, type Channel, type DeliveryResult, type Notification, type RetryPolicy, type TemplateName } from './channel.js';
import { parseRetryAfter } from './retry.js';
import { createTargetPolicy, type TargetPolicy } from './target-policy.js';
import { signWebhook, webhookSecretKey } from './webhook-signature.js';

export interface WebhookChannelOptions {
  readonly name: string;
  /** http or https; never logged whole (its path may hold a token): only scheme and host appear in reasons. */
  readonly url: string;
  /** `whsec_…` secrets: the current one first, then previous ones during a rotation (each adds a signature). */
  readonly secrets: readonly string[];
  /** Whole attempt, connection to last byte. Default 15 s (Standard Webhooks recommends 15–30 s). */
  readonly timeoutMs?: number;
  readonly retry?: RetryPolicy;
  readonly template?: TemplateName;
  /** Which targets may be called; default: public addresses only. */
  readonly policy?: TargetPolicy;
  /** Wall clock in epoch ms, for `webhook-timestamp` and HTTP-date `Retry-After`. */
  readonly clock?: () => number;
}

const DEFAULT_TIMEOUT_MS = 15_000;
/** Response bytes kept for the failure reason; the rest is read and discarded. */
const RESPONSE_SNIPPET_BYTES = 200;

/**
 * A Standard Webhooks endpoint: one HTTP POST per attempt with the JSON body and the headers
 * `webhook-id` (the transition id, the same on every retry), `webhook-timestamp` (seconds, of
 * this attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`).
 *
 * Before each attempt the target is checked by the `TargetPolicy` and the connection goes to the
 * address that was checked. Redirects are not followed. Outcomes: 2xx delivered; 410 gone (the
 * worker disables the channel); 408, 429, 5xx, timeouts and network errors retry (with the
 * receiver's `Retry-After`); 3xx and the other 4xx fail for good.
 *
 * @example
 * const hook = createWebhookChannel({ name: 'ops', url: 'https://hooks.example.com/gp', secrets: ['whsec_…'] });
 * await hook.deliver({ id: 'al_0123456789abcdef:0', event, template: 'generic', body }, { attempt: 1 });
 */
export function createWebhookChannel(options: WebhookChannelOptions): Channel {
  const url = parseUrl(options.url, options.name);
  const keys = options.secrets.map((secret, index) => webhookSecretKey(secret, `channels.${options.name}.secrets[${index}]`));
  if (keys.length === 0) {
    throw new GpError('GP_CONFIG_INVALID', `channels.${options.name}.secret: expected a Standard Webhooks secret like "whsec_" followed by base64, got none`, { field: `channels.${options.name}.secret` });
  }
  const policy = options.policy ?? createTargetPolicy();
  const refused = policy.refuseUrl(url);
  const target = `${url.protocol}//${url.host}`;
  if (refused !== undefined) {
    throw new GpError('GP_CONFIG_INVALID', `channels.${options.name}.url: expected a webhook target the allow-list permits, got ${target}: ${refused}`, { field: `channels.${options.name}.url`, target });
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const clock = options.clock ?? Date.now;

  async function deliver(notification: Notification, _context: AttemptContext): Promise<DeliveryResult> {
    const checked = await policy.check(url);
    if (!checked.ok) return checked.transient ? { outcome: 'retry', reason: checked.reason } : { outcome: 'failed', reason: checked.reason };
    const signature = signWebhook(notification.id, Math.floor(clock() / 1000), notification.body, keys);
    const headers = {
      host: url.host,
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(notification.body)),
      'user-agent': 'gridpulse-alerts',
      ...signature,
    };
    let response: { status: number; headers: IncomingMessage['headers']; snippet: string };
    try {
      response = await post(url, checked.hostname, checked.address, checked.family, headers, notification.body, timeoutMs);
    } catch (error) {
      return { outcome: 'retry', reason: `POST ${target}: ${errorMessage(error)}` };
    }
    return classify(response.status, response.headers, response.snippet, target, clock());
  }

  return {
    name: options.name,
    kind: 'webhook',
    defaultTemplate: options.template ?? 'generic',
    retry: options.retry ?? DEFAULT_RETRY_POLICY,
    target,
    ready: () => Promise.resolve(),
    deliver,
    close: () => Promise.resolve(),
  };
}

function parseUrl(text: string, name: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new GpError('GP_CONFIG_INVALID', `channels.${name}.url: expected an http or https URL, got text that is not a URL`, { field: `channels.${name}.url` });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new GpError('GP_CONFIG_INVALID', `channels.${name}.url: expected an http or https URL, got a URL with the scheme ${url.protocol.replace(':', '')}`, { field: `channels.${name}.url` });
  }
  if (url.username !== '' || url.password !== '') {
    throw new GpError('GP_CONFIG_INVALID', `channels.${name}.url: expected a URL without a user name or password, got credentials for ${url.host}`, { field: `channels.${name}.url` });
  }
  return url;
}

function classify(status: number, headers: IncomingMessage['headers'], snippet: string, target: string, now: number): DeliveryResult {
  const said = snippet === '' ? '' : `: ${snippet}`;
  if (status >= 200 && status < 300) return { outcome: 'delivered', status };
  if (status === 410) return { outcome: 'gone', status, reason: `HTTP 410 Gone from ${target}: the receiver asked to stop sending${said}` };
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = parseRetryAfter(headers['retry-after'], now);
    const reason = `HTTP ${status} from ${target}${said}`;
    return retryAfterMs === undefined ? { outcome: 'retry', status, reason } : { outcome: 'retry', status, reason, retryAfterMs };
  }
  if (status >= 300 && status < 400) {
    return { outcome: 'failed', status, reason: `HTTP ${status} from ${target}: redirects are not followed; configure the final URL` };
  }
  return { outcome: 'failed', status, reason: `HTTP ${status} from ${target}${said}` };
}

function post(
  url: URL,
  hostname: string,
  address: string,
  family: 4 | 6,
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<{ status: number; headers: IncomingMessage['headers']; snippet: string }> {
  // Connect to the address the policy checked, whatever the resolver would answer now (DNS rebinding).
  const lookup = ((_host: string, lookupOptions: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (lookupOptions.all === true) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as unknown as LookupFunction;
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | undefined, value?: { status: number; headers: IncomingMessage['headers']; snippet: string }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error !== undefined) reject(error);
      else if (value !== undefined) resolve(value);
    };
    const req = request({
      hostname,
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      headers,
      lookup,
      agent: false,
    });
    const timer = setTimeout(() => {
      const error = new Error(`no complete response within ${timeoutMs} ms (timeout)`);
      finish(error);
      req.destroy(error);
    }, timeoutMs);
    timer.unref();
    req.on('error', (error) => finish(error));
    req.on('response', (response) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      response.on('data', (chunk: Buffer) => {
        if (kept < RESPONSE_SNIPPET_BYTES) {
          chunks.push(chunk);
          kept += chunk.length;
        }
      });
      response.on('error', (error) => finish(error));
      response.on('end', () => {
        const snippet = Buffer.concat(chunks).toString('utf8').slice(0, RESPONSE_SNIPPET_BYTES).replace(/\s+/g, ' ').trim();
        finish(undefined, { status: response.statusCode ?? 0, headers: response.headers, snippet });
      });
    });
    req.end(body);
  });
}
