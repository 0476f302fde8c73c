/**
 * A webhook receiver on loopback for delivery tests: records every request, answers with a status
 * the test sets, and checks Standard Webhooks signatures itself (HMAC-SHA256 of
 * `${webhook-id}.${webhook-timestamp}.${body}` with the secret), as a real receiver would.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);
const secretBytes = randomBytes(32);
export const SECRET = `whsec_${secretBytes.toString('base64')}`;

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A receiver that checks signatures itself, the way the Standard Webhooks spec tells receivers to. */
export async function receiver(): Promise<{ url: string; received: Received[]; status: { code: number }; close: () => Promise<void> }> {
  const received: Received[] = [];
  const status = { code: 200 };
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.writeHead(status.code).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, received, status, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export function signatureValid(r: Received): boolean {
  const id = String(r.headers['webhook-id']);
  const timestamp = String(r.headers['webhook-timestamp']);
  const expected = createHmac('sha256', secretBytes).update(`${id}.${timestamp}.${r.body}`).digest('base64');
  return String(r.headers['webhook-signature']).split(' ').includes(`v1,${expected}`);
}

/** A meter at 2 kW for 15 minutes, then 9 kW (a spike), then an hour later one reading that closes every window. */
export function spikeReadings(): string {
  const lines: string[] = [];
  for (let i = 0; i < 120; i++) lines.push(JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: T0 + i * 10_000, usageKw: i >= 90 ? 9 : 2 + (i % 3) * 0.01 }));
  lines.push(JSON.stringify({ meterId: 'm-1', siteId: 's-1', timestamp: T0 + 3_600_000, usageKw: 2 }));
  return lines.join('\n');
}

export async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

