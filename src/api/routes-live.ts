import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { aggregateToJson } from '../model/index.js';
import type { ApiContext } from './context.js';
import { checkStream, parseList } from './query-values.js';
import type { LiveEvent } from './platform.js';
import { LiveQuery, errors } from './schemas.js';

type LiveType = LiveEvent['type'];
const LIVE_TYPES: readonly LiveType[] = ['aggregate', 'alert', 'ops', 'status'];

interface LiveFilter {
  types: ReadonlySet<LiveType>;
  stream: string | undefined;
  site: string | undefined;
  keys: ReadonlySet<string> | undefined;
}

/**
 * One SSE connection. Frames go straight to the socket while it takes them; once it pushes
 * back they queue, and a client whose queue passes the bound is dropped (its connection is
 * closed) — a slow reader never holds up the engine or the other clients.
 */
class LiveClient {
  private readonly queue: string[] = [];
  private blocked = false;
  closed = false;

  constructor(
    private readonly raw: ServerResponse,
    readonly filter: LiveFilter,
    private readonly bufferLimit: number,
    private readonly onDrop: () => void,
  ) {
    raw.on('drain', () => this.flush());
  }

  offer(frame: string): void {
    if (this.closed) return;
    if (!this.blocked) {
      if (!this.raw.write(frame)) this.blocked = true;
      return;
    }
    this.queue.push(frame);
    if (this.queue.length > this.bufferLimit) {
      this.closed = true;
      this.queue.length = 0;
      this.onDrop();
      this.raw.destroy();
    }
  }

  private flush(): void {
    this.blocked = false;
    while (!this.closed && this.queue.length > 0) {
      if (!this.raw.write(this.queue.shift())) {
        this.blocked = true;
        return;
      }
    }
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    if (!this.raw.destroyed) this.raw.end();
  }
}

function identity(event: Exclude<LiveEvent, { type: 'status' }>): { stream: string; site: string | undefined; key: string | undefined } {
  switch (event.type) {
    case 'aggregate':
      return { stream: event.data.stream, site: event.data.site, key: event.data.key };
    case 'alert':
      return { stream: event.data.alert.stream, site: event.data.alert.site, key: event.data.alert.key };
    case 'ops':
      return { stream: event.data.stream, site: undefined, key: event.data.key };
  }
}

function matches(event: LiveEvent, filter: LiveFilter): boolean {
  if (!filter.types.has(event.type)) return false;
  if (event.type === 'status') return true;
  const id = identity(event);
  if (filter.stream !== undefined && id.stream !== filter.stream) return false;
  if (filter.site !== undefined && id.site !== filter.site) return false;
  if (filter.keys !== undefined && (id.key === undefined || !filter.keys.has(id.key))) return false;
  return true;
}

function frameOf(event: LiveEvent): string {
  const data = event.type === 'aggregate' ? aggregateToJson(event.data) : event.data;
  return `event: ${event.type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** `GET /api/live`: Server-Sent Events of aggregates, alert events, ops and status, filtered per client. */
export function registerLiveRoutes(app: FastifyInstance, context: ApiContext): void {
  const { platform, metrics } = context;
  const clients = new Set<LiveClient>();
  // The same event object reaches every subscriber: serialize it once.
  const frames = new WeakMap<object, string>();
  let lastFeedStatusAt = Number.NEGATIVE_INFINITY;
  let statusTimer: NodeJS.Timeout | undefined;
  let heartbeatTimer: NodeJS.Timeout | undefined;

  const frame = (event: LiveEvent): string => {
    let text = frames.get(event.data);
    if (text === undefined) {
      text = frameOf(event);
      frames.set(event.data, text);
    }
    return text;
  };
  const statusFrame = (): string => frameOf({ type: 'status', data: platform.status() });

  function startTimers(): void {
    if (statusTimer !== undefined) return;
    statusTimer = setInterval(() => {
      // The platform may publish status itself; only fill in when it has not lately.
      if (Date.now() - lastFeedStatusAt < context.liveStatusIntervalMs * 0.9) return;
      let text: string | undefined;
      for (const client of clients) {
        if (!client.filter.types.has('status')) continue;
        text ??= statusFrame();
        client.offer(text);
      }
    }, context.liveStatusIntervalMs);
    heartbeatTimer = setInterval(() => {
      for (const client of clients) client.offer(': heartbeat\n\n');
    }, context.liveHeartbeatMs);
    statusTimer.unref();
    heartbeatTimer.unref();
  }
  function stopTimers(): void {
    clearInterval(statusTimer);
    clearInterval(heartbeatTimer);
    statusTimer = undefined;
    heartbeatTimer = undefined;
  }

  app.get<{ Querystring: { stream?: string; site?: string; key?: string | string[]; types?: string | string[] } }>(
    '/api/live',
    {
      exposeHeadRoute: false,
      schema: {
        tags: ['portal'],
        summary: 'Live updates as Server-Sent Events',
        description:
          'text/event-stream. Each event is `event: <type>` + `data: <json>`: aggregate (AggregateJson), alert (AlertEvent: alert + transition), ' +
          `ops (OpsEvent), status (PlatformStatus, every ${context.liveStatusIntervalMs / 1000} s and on connect). A comment heartbeat every ` +
          `${context.liveHeartbeatMs / 1000} s. A client that falls ${context.server.limits.sseBufferEvents} events behind is disconnected.`,
        produces: ['text/event-stream'],
        querystring: LiveQuery,
        response: { 200: { description: 'an event stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors(400) },
      },
    },
    (request, reply) => {
      const q = request.query;
      checkStream(platform.streams, q.stream);
      const types = parseList(q.types, 'types', LIVE_TYPES) ?? LIVE_TYPES;
      const keys = q.key === undefined ? undefined : parseList(q.key, 'key');
      const filter: LiveFilter = {
        types: new Set(types),
        stream: q.stream,
        site: q.site,
        keys: keys === undefined ? undefined : new Set(keys),
      };

      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      raw.write('retry: 3000\n: connected\n\n');
      const client = new LiveClient(raw, filter, context.server.limits.sseBufferEvents, () => {
        metrics.liveDropped.inc();
        request.log.warn({ filter: q }, 'live client dropped: it fell too far behind');
      });
      clients.add(client);
      metrics.liveClients.set(clients.size);
      startTimers();
      const unsubscribe = platform.live.subscribe((event) => {
        if (event.type === 'status') lastFeedStatusAt = Date.now();
        if (matches(event, client.filter)) client.offer(frame(event));
      }, filter.types);
      if (filter.types.has('status')) client.offer(statusFrame());

      let cleaned = false;
      const cleanup = (): void => {
        if (cleaned) return;
        cleaned = true;
        unsubscribe();
        client.end();
        clients.delete(client);
        metrics.liveClients.set(clients.size);
        if (clients.size === 0) stopTimers();
      };
      raw.on('close', cleanup);
      raw.on('error', cleanup);
      request.raw.on('error', cleanup);
      // A client that goes away: the request stream is destroyed (a real socket closing, or inject's abort signal).
      request.raw.on('close', () => {
        if (request.raw.destroyed && !raw.writableEnded) cleanup();
      });
    },
  );

  // End the event streams before the server closes, or closing would wait for them for ever.
  app.addHook('preClose', (done) => {
    for (const client of clients) client.end();
    done();
  });
}
