// Shared by the alert delivery tests: real alert events, a real HTTP receiver on 127.0.0.1 that
// verifies Standard Webhooks signatures the way a receiver would, and a test clock. Not a test file itself.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { AlertEvent } from '../../src/model/index.js';
import { MINUTE, SECOND, T0, finding, setupManager } from '../helpers/alerts.js';

/** A Standard Webhooks secret: "whsec_" and base64 of 32 bytes. */
export const SECRET = `whsec_${Buffer.from('gridpulse-test-signing-key-0123456789'.slice(0, 32)).toString('base64')}`;
export const OTHER_SECRET = `whsec_${Buffer.alloc(32, 0x5a).toString('base64')}`;

/** Alert events made by the real alert manager: for each of `meters` meters an open, then a resolve. */
export function alertEvents(meters = 1, extra: Parameters<typeof finding>[1] = {}): AlertEvent[] {
  const { manager, events } = setupManager();
  for (let index = 0; index < meters; index += 1) manager.onFinding(finding(T0 + index * SECOND, { key: `m-${index + 1}`, ...extra }));
  manager.onWatermark(T0 + 30 * MINUTE);
  return events;
}

/**
 * Verifies a request as a Standard Webhooks receiver does, computed here independently of
 * src/alerts: HMAC-SHA256 with the base64-decoded secret over "id.timestamp.body", compared in
 * constant time with each "v1," signature of the header.
 */
export function signatureVerifies(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return signatures.split(' ').some((signature) => {
    const [version, value] = signature.split(',');
    if (version !== 'v1' || value === undefined) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** What the receiver does with one request. */
export type ReceiverAction =
  | { readonly status: number; readonly headers?: Record<string, string>; readonly body?: string }
  | { readonly hang: true }
  | { readonly reset: true }
  | { readonly holdUntil: Promise<void>; readonly status: number };

export interface Receiver {
  readonly url: string;
  readonly port: number;
  readonly requests: ReceivedRequest[];
  /** Resolves once `count` requests have arrived. */
  waitForRequests(count: number): Promise<void>;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 (port chosen by the system); `respond` decides each answer from the 0-based request index. */
export async function startReceiver(respond: (index: number, request: ReceivedRequest) => ReceiverAction = () => ({ status: 204 })): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((request, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const received: ReceivedRequest = { method: request.method ?? '', path: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') };
      const index = requests.length;
      requests.push(received);
      for (const waiter of waiters.filter((candidate) => requests.length >= candidate.count)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
      const action = respond(index, received);
      if ('hang' in action) return;
      if ('reset' in action) {
        request.socket.destroy();
        return;
      }
      if ('holdUntil' in action) {
        void action.holdUntil.then(() => response.writeHead(action.status).end());
        return;
      }
      response.writeHead(action.status, action.headers ?? {}).end(action.body ?? '');
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks/gridpulse?token=t0k3n`,
    port,
    requests,
    waitForRequests(count) {
      if (requests.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A wall clock the test drives, and a sleep that records each wait and moves the clock by it. */
export function testTime(start = T0) {
  const time = { now: start, delays: [] as number[] };
  return {
    time,
    clock: () => time.now,
    sleep: (ms: number): Promise<void> => {
      time.delays.push(ms);
      time.now += ms;
      return Promise.resolve();
    },
  };
}

/** A promise and the function that settles it. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
