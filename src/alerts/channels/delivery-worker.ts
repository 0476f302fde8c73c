import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GpError } from '../../model/index.js';
import type { AlertEvent } from '../../model/index.js';
import { DEFAULT_RETRY_POLICY, errorMessage, type Channel, type DeliveryResult, type Notification, type TemplateName } from './channel.js';
import { createMemoryDeadLetterStore, deadLetterId, type DeadLetter, type DeadLetterFilter, type DeadLetterStore } from './dead-letters.js';
import { createIncidentGrouper, type GroupedOutput, type GroupingStats, type IncidentGrouperOptions } from './incident-grouper.js';
import { retryDelay } from './retry.js';
import type { AlertRouter, RouteTarget } from './router.js';
import { renderIncidentNotice, renderNotification } from './templates.js';

/** Counters of one channel since the worker started (`queued` and `disabled` are the state now). */
export interface ChannelMetrics {
  /** Notifications the receiver took (manual redeliveries included). */
  delivered: number;
  /** Retries scheduled after a failed attempt. */
  retried: number;
  /** Attempts that failed, whatever came next (a retry, a dead letter, a disabled channel). */
  failed: number;
  /** Notifications given up and put in the dead-letter list. */
  deadLettered: number;
  /** Transitions refused because this channel's queue was full (the caller was told; nothing was dropped). */
  rejected: number;
  /** Dead letters delivered by a manual redelivery (also counted in `delivered`). */
  redelivered: number;
  /** Notifications waiting or in progress now. */
  queued: number;
  /** Set while the channel is disabled (after an HTTP 410), with the reason. */
  disabled: string | undefined;
}

/** What the worker tells its owner (for logs and the ops output); never holds a secret or a full webhook URL. */
export type DeliveryReport =
  | { readonly kind: 'overflow'; readonly transitionId: string; readonly channels: readonly string[]; readonly capacity: number }
  | { readonly kind: 'retry'; readonly channel: string; readonly transitionId: string; readonly attempt: number; readonly delayMs: number; readonly reason: string }
  | { readonly kind: 'dead-lettered'; readonly channel: string; readonly transitionId: string; readonly reason: string }
  | { readonly kind: 'channel-disabled'; readonly channel: string; readonly reason: string }
  | { readonly kind: 'channel-enabled'; readonly channel: string }
  | { readonly kind: 'dead-letter-store-failed'; readonly channel: string; readonly transitionId: string; readonly reason: string }
  | { readonly kind: 'grouping-state-failed'; readonly reason: string };

/**
 * Grouping of device alerts into site incidents before delivery (see `createIncidentGrouper`).
 * With `statePath` the grouping state (held alerts, open incidents) is written there — atomically,
 * whenever `idle()` is awaited and at `close()` — and read back by `ready()`, so a restart neither
 * loses a held alert nor pages an incident twice. Without it the state is in memory, and `idle()`
 * also waits until every held alert was sent (a whole group wait).
 */
export interface DeliveryGroupingOptions extends IncidentGrouperOptions {
  readonly statePath?: string | undefined;
}

/**
 * The answer to `submit`. When `accepted` is false nothing was queued anywhere (all or nothing),
 * and the caller still holds the transition: it should slow down (`waitForCapacity`) and submit
 * it again — the same transition id, so receivers see no difference.
 */
export type SubmitResult =
  /** `channels`: where it was queued; none while it is held for grouping. */
  | { readonly accepted: true; readonly channels: readonly string[] }
  | { readonly accepted: false; readonly reason: 'full' | 'closed'; readonly channels: readonly string[]; readonly message: string };

/** The outcome of a manual redelivery of one dead letter. */
export type RedeliveryResult =
  | { readonly delivered: true; readonly id: string; readonly channel: string }
  | { readonly delivered: false; readonly id: string; readonly channel: string; readonly outcome: Exclude<DeliveryResult['outcome'], 'delivered'>; readonly reason: string };

export interface DeliveryWorkerOptions {
  /** The worker owns them: it closes them on `close()`. Names must be unique. */
  readonly channels: readonly Channel[];
  /** Every channel a route names must be among `channels`. */
  readonly router: AlertRouter;
  /** Owned too (closed on `close()`). Default: in memory. */
  readonly deadLetters?: DeadLetterStore;
  /** Notifications waiting per channel, the one in progress included. Default 10 000. */
  readonly queueCapacity?: number;
  /** Wall clock, epoch ms (dead-letter times). */
  readonly clock?: () => number;
  /** Waits between attempts; must resolve early when `signal` aborts (on `close()`). */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Uniform in [0, 1), for the backoff jitter. */
  readonly random?: () => number;
  readonly onReport?: (report: DeliveryReport) => void;
  /** Off when absent: every transition goes out on its own, at once. */
  readonly grouping?: DeliveryGroupingOptions | undefined;
}

/**
 * Delivers alert transitions to the channels their routes name, at least once, without ever
 * blocking the caller.
 *
 * - `submit(event)` is synchronous and cheap: it renders the body and queues one notification per
 *   target channel. Each channel has its own bounded FIFO queue and works through it one
 *   notification at a time, so a channel keeps the order transitions were submitted in, and a slow
 *   or failing channel never delays another.
 * - When a target channel's queue is full the whole submission is refused (`accepted: false`,
 *   reported as `overflow`, counted as `rejected`) — never silently dropped; the caller applies
 *   backpressure with `waitForCapacity()` and submits again.
 * - Each notification is attempted up to its channel's `retry.attempts`, waiting by exponential
 *   backoff with full jitter (at least the receiver's `Retry-After`). A permanent failure, the
 *   last failed attempt, or a `Retry-After` beyond `maxDelay` puts it in the dead-letter list.
 *   A `gone` answer (HTTP 410) disables the channel (reported); its notifications then go
 *   straight to the dead-letter list until `enableChannel` is called.
 * - `redeliver(id)` sends a dead letter again (one attempt, same id and body) and removes it on
 *   success. `close()` stops accepting, ends the waits, dead-letters what was not delivered yet
 *   (so nothing is lost), then closes the channels and the dead-letter store.
 *
 * - With `grouping`, transitions of alerts of the incident types are held for the group wait and
 *   then sent either on their own (a device fault) or as one incident notification
 *   (`incident.opened`, later `incident.updated` and `incident.resolved`) instead of one page per
 *   device; other transitions are not delayed. Incident notifications are routed as the linked
 *   alerts' `open`, `update` and `resolve` would be, and bypass the queue capacity (their alerts
 *   were accepted already).
 *
 * Not durable by itself: notifications queued in memory when the process dies are lost — callers
 * make delivery survive a crash by awaiting `idle()` before they count a transition as sent
 * (checkpoints, the transactional outbox); with a grouping `statePath`, `idle()` counts a held
 * alert as safe once the grouping state holding it is on disk.
 *
 * @example
 * const worker = createDeliveryWorker({ channels: [hook], router: createAlertRouter([{ channels: ['ops'] }]) });
 * await worker.ready();
 * const events: AlertEvent[] = [];
 * const alerts = createAlertManager({ policy, emit: (event) => { if (!worker.submit(event).accepted) events.push(event); } });
 */
export interface DeliveryWorker {
  /** Opens the channels and the dead-letter store. A channel that cannot connect yet does not fail it: its attempts retry. */
  ready(): Promise<void>;
  submit(event: AlertEvent): SubmitResult;
  /** Resolves when every channel `event` routes to (every channel, without an event) has room again. */
  waitForCapacity(event?: AlertEvent): Promise<void>;
  /**
   * Resolves when no notification is queued or in progress, and every alert held for grouping is
   * safe: written to the grouping state file (with `statePath`), else sent.
   */
  idle(): Promise<void>;
  metrics(): Record<string, ChannelMetrics>;
  /** Grouping counters; undefined without grouping. */
  grouping(): GroupingStats | undefined;
  listDeadLetters(filter?: DeadLetterFilter): Promise<DeadLetter[]>;
  /** One attempt now; throws GP_NOT_FOUND for an unknown id, GP_CONFLICT while its channel is disabled. */
  redeliver(id: string): Promise<RedeliveryResult>;
  /** Drops a dead letter for good; false when there was none. */
  discardDeadLetter(id: string): Promise<boolean>;
  /** Re-enables a channel disabled by a 410; false when it was not disabled. */
  enableChannel(name: string): boolean;
  close(): Promise<void>;
}

interface Item {
  readonly notification: Notification;
}

interface Lane {
  readonly channel: Channel;
  readonly queue: Item[];
  running: boolean;
  disabled: string | undefined;
  readonly counters: Omit<ChannelMetrics, 'queued' | 'disabled'>;
}

const DEFAULT_QUEUE_CAPACITY = 10_000;

export function createDeliveryWorker(options: DeliveryWorkerOptions): DeliveryWorker {
  const capacity = options.queueCapacity ?? DEFAULT_QUEUE_CAPACITY;
  if (!Number.isInteger(capacity) || capacity < 1) {
    throw new GpError('GP_CONFIG_INVALID', `queueCapacity: expected a whole number of notifications, at least 1, got ${String(capacity)}`, { field: 'queueCapacity' });
  }
  const lanes = new Map<string, Lane>();
  for (const channel of options.channels) {
    if (lanes.has(channel.name)) throw new GpError('GP_CONFIG_INVALID', `channels: expected unique channel names, got "${channel.name}" twice`, { field: 'channels' });
    lanes.set(channel.name, { channel, queue: [], running: false, disabled: undefined, counters: { delivered: 0, retried: 0, failed: 0, deadLettered: 0, rejected: 0, redelivered: 0 } });
  }
  for (const name of options.router.channels()) {
    if (!lanes.has(name)) {
      throw new GpError('GP_CONFIG_INVALID', `routes: expected channels that exist (${[...lanes.keys()].join(', ') || 'none'}), got "${name}"`, { field: 'routes', channel: name });
    }
  }
  const router = options.router;
  const store = options.deadLetters ?? createMemoryDeadLetterStore();
  // Entries the store could not take (disk full, …) stay visible and redeliverable from here.
  const unsaved = createMemoryDeadLetterStore();
  const clock = options.clock ?? Date.now;
  const sleep = options.sleep ?? abortableSleep;
  const random = options.random ?? Math.random;
  const onReport = options.onReport;
  const report = (entry: DeliveryReport): void => {
    // A failing report handler must not stop a channel's queue.
    try {
      onReport?.(entry);
    } catch {
      // nothing to do: the counters still say what happened
    }
  };
  const grouper = options.grouping === undefined ? undefined : createIncidentGrouper(options.grouping);
  const statePath = options.grouping?.statePath;
  let groupTimer: NodeJS.Timeout | undefined;
  // The grouping state changes with every offer and decision; `savedVersion` is what the file holds.
  let stateVersion = 0;
  let savedVersion = 0;
  let saving: Promise<void> | undefined;
  let groupWaiters: Array<() => void> = [];
  const closing = new AbortController();
  let closed = false;
  let closedDone: Promise<void> | undefined;
  let capacityWaiters: Array<() => void> = [];
  let idleWaiters: Array<() => void> = [];

  function lane(name: string): Lane {
    const found = lanes.get(name);
    if (found === undefined) throw new GpError('GP_INTERNAL', `delivery worker: no channel "${name}"`);
    return found;
  }

  function wake(): void {
    const waiters = capacityWaiters;
    capacityWaiters = [];
    for (const waiter of waiters) waiter();
    if ([...lanes.values()].every((candidate) => candidate.queue.length === 0 && !candidate.running)) {
      const idle = idleWaiters;
      idleWaiters = [];
      for (const waiter of idle) waiter();
    }
  }

  async function deadLetter(target: Lane, notification: Notification, attempts: number, firstAttemptAt: number, reason: string, status: number | undefined): Promise<void> {
    const { event, incident } = notification;
    const entry: DeadLetter = {
      id: deadLetterId(target.channel.name, notification.id),
      channel: target.channel.name,
      transitionId: notification.id,
      alertId: incident === undefined ? event.alert.id : incident.incident.id,
      template: notification.template,
      event,
      ...(incident === undefined ? {} : { incident }),
      reason,
      status,
      attempts,
      firstAttemptAt,
      deadLetteredAt: clock(),
    };
    target.counters.deadLettered += 1;
    try {
      await store.add(entry);
      await unsaved.remove(entry.id);
    } catch (error) {
      await unsaved.add(entry);
      report({ kind: 'dead-letter-store-failed', channel: entry.channel, transitionId: entry.transitionId, reason: errorMessage(error) });
    }
    report({ kind: 'dead-lettered', channel: entry.channel, transitionId: entry.transitionId, reason });
  }

  function disable(target: Lane, reason: string): void {
    if (target.disabled !== undefined) return;
    target.disabled = reason;
    report({ kind: 'channel-disabled', channel: target.channel.name, reason });
  }

  async function attempt(target: Lane, notification: Notification, number: number): Promise<DeliveryResult> {
    try {
      return await target.channel.deliver(notification, { attempt: number });
    } catch (error) {
      return { outcome: 'retry', reason: errorMessage(error) };
    }
  }

  async function deliverItem(target: Lane, item: Item): Promise<void> {
    const { notification } = item;
    const policy = target.channel.retry ?? DEFAULT_RETRY_POLICY;
    let attempts = 0;
    let firstAttemptAt = clock();
    let lastReason = '';
    let lastStatus: number | undefined;
    for (;;) {
      if (target.disabled !== undefined) {
        await deadLetter(target, notification, attempts, firstAttemptAt, `channel disabled: ${target.disabled}`, lastStatus);
        return;
      }
      if (closed) {
        await deadLetter(target, notification, attempts, firstAttemptAt, `not delivered before the delivery worker closed${lastReason === '' ? '' : `; last attempt: ${lastReason}`}`, lastStatus);
        return;
      }
      if (attempts === 0) firstAttemptAt = clock();
      attempts += 1;
      const result = await attempt(target, notification, attempts);
      if (result.outcome === 'delivered') {
        target.counters.delivered += 1;
        return;
      }
      target.counters.failed += 1;
      lastReason = result.reason;
      lastStatus = result.status;
      if (result.outcome === 'gone') {
        disable(target, result.reason);
        await deadLetter(target, notification, attempts, firstAttemptAt, result.reason, result.status);
        return;
      }
      if (result.outcome === 'failed') {
        await deadLetter(target, notification, attempts, firstAttemptAt, result.reason, result.status);
        return;
      }
      const decision = retryDelay(policy, attempts, random, result.retryAfterMs);
      if (!decision.retry) {
        await deadLetter(target, notification, attempts, firstAttemptAt, `${decision.reason}: ${result.reason}`, result.status);
        return;
      }
      target.counters.retried += 1;
      report({ kind: 'retry', channel: target.channel.name, transitionId: notification.id, attempt: attempts, delayMs: decision.delayMs, reason: result.reason });
      if (!closed) await sleep(decision.delayMs, closing.signal);
    }
  }

  async function pump(target: Lane): Promise<void> {
    if (target.running) return;
    target.running = true;
    try {
      for (let item = target.queue[0]; item !== undefined; item = target.queue[0]) {
        await deliverItem(target, item);
        target.queue.shift();
        wake();
      }
    } finally {
      target.running = false;
      wake();
    }
  }

  function render(event: AlertEvent, template: TemplateName, cache: Map<TemplateName, string>): string {
    let body = cache.get(template);
    if (body === undefined) {
      body = renderNotification(event, template);
      cache.set(template, body);
    }
    return body;
  }

  function hasRoom(names: readonly string[]): boolean {
    return names.every((name) => lane(name).queue.length < capacity);
  }

  function lanesIdle(): Promise<void> {
    if ([...lanes.values()].every((target) => target.queue.length === 0 && !target.running)) return Promise.resolve();
    return new Promise<void>((resolve) => idleWaiters.push(resolve));
  }

  function enqueue(event: AlertEvent, targets: readonly RouteTarget[]): void {
    const bodies = new Map<TemplateName, string>();
    for (const target of targets) {
      const destination = lane(target.channel);
      const template = target.template ?? destination.channel.defaultTemplate;
      destination.queue.push({ notification: { id: event.transition.id, event, template, body: render(event, template, bodies) } });
      void pump(destination);
    }
  }

  /** Sends what the grouper released: a device transition as it is, an incident notice to the union of its routes. */
  function send(outputs: readonly GroupedOutput[]): void {
    for (const output of outputs) {
      if (output.kind === 'alert') {
        enqueue(output.event, router.targets(output.event));
        continue;
      }
      const chosen = new Map<string, RouteTarget>();
      for (const event of output.routeEvents) for (const target of router.targets(event)) if (!chosen.has(target.channel)) chosen.set(target.channel, target);
      const event = output.routeEvents[0];
      if (event === undefined) continue;
      for (const target of chosen.values()) {
        const destination = lane(target.channel);
        const template = target.template ?? destination.channel.defaultTemplate;
        const body = renderIncidentNotice(output.notice, template);
        destination.queue.push({ notification: { id: output.notice.id, event, incident: output.notice, template, body } });
        void pump(destination);
      }
    }
  }

  function scheduleGroups(): void {
    clearTimeout(groupTimer);
    groupTimer = undefined;
    const next = grouper?.nextDueAt();
    if (next === undefined || closed) return;
    groupTimer = setTimeout(runGroups, Math.min(Math.max(0, next - clock()), 2 ** 31 - 1));
    groupTimer.unref();
  }

  function runGroups(): void {
    groupTimer = undefined;
    if (grouper === undefined || closed) return;
    send(grouper.due(clock()));
    stateVersion += 1;
    scheduleGroups();
    const waiters = groupWaiters;
    groupWaiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Writes the grouping state, taken at a moment no notification is queued: what it says was decided was also delivered or dead-lettered. */
  async function saveState(path: string): Promise<void> {
    if (saving !== undefined) {
      await saving;
      return;
    }
    if (grouper === undefined || ![...lanes.values()].every((target) => target.queue.length === 0 && !target.running)) return;
    const version = stateVersion;
    const text = JSON.stringify(grouper.snapshot());
    saving = writeAtomically(path, text).then(() => {
      savedVersion = Math.max(savedVersion, version);
    });
    try {
      await saving;
    } finally {
      saving = undefined;
    }
  }

  async function idle(): Promise<void> {
    for (;;) {
      await lanesIdle();
      if (grouper === undefined) return;
      if (statePath === undefined) {
        if (closed || !grouper.holding()) return;
        await new Promise<void>((resolve) => groupWaiters.push(resolve));
        continue;
      }
      if (savedVersion === stateVersion) return;
      await saveState(statePath);
    }
  }

  async function loadState(path: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new GpError('GP_STORE_FAILED', `incident grouping state ${path}: cannot be read (${errorMessage(error)})`, { path }, { cause: error });
    }
    try {
      grouper?.restore(JSON.parse(text) as unknown, clock());
    } catch (error) {
      throw new GpError(
        'GP_CHECKPOINT_INVALID',
        `incident grouping state ${path}: expected the JSON gridpulse wrote, got unreadable content (${errorMessage(error)}); move the file away to start without it (alerts it held are then not sent)`,
        { path },
        { cause: error },
      );
    }
  }

  return {
    async ready() {
      await store.ready();
      if (statePath !== undefined) await loadState(statePath);
      scheduleGroups();
      // A broker or receiver that is down now is not a reason to refuse starting: attempts retry.
      await Promise.all([...lanes.values()].map((target) => target.channel.ready().catch(() => undefined)));
    },

    submit(event) {
      const targets = router.targets(event);
      const names = targets.map((target) => target.channel);
      if (closed) return { accepted: false, reason: 'closed', channels: names, message: 'the delivery worker is closed' };
      if (grouper?.handles(event) === true) {
        send(grouper.offer(event, clock()));
        stateVersion += 1;
        scheduleGroups();
        return { accepted: true, channels: [] };
      }
      const full = names.filter((name) => lane(name).queue.length >= capacity);
      if (full.length > 0) {
        for (const name of full) lane(name).counters.rejected += 1;
        report({ kind: 'overflow', transitionId: event.transition.id, channels: full, capacity });
        return { accepted: false, reason: 'full', channels: full, message: `delivery queue full (${capacity} notifications) for ${full.join(', ')}: submit ${event.transition.id} again after waitForCapacity()` };
      }
      enqueue(event, targets);
      return { accepted: true, channels: names };
    },

    waitForCapacity(event) {
      const names = event === undefined ? [...lanes.keys()] : router.targets(event).map((target) => target.channel);
      if (closed || hasRoom(names)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const check = (): void => {
          if (closed || hasRoom(names)) resolve();
          else capacityWaiters.push(check);
        };
        capacityWaiters.push(check);
      });
    },

    idle,

    metrics() {
      const result: Record<string, ChannelMetrics> = {};
      for (const [name, target] of lanes) result[name] = { ...target.counters, queued: target.queue.length, disabled: target.disabled };
      return result;
    },

    grouping: () => grouper?.stats(),

    async listDeadLetters(filter) {
      const byChannel = filter?.channel === undefined ? undefined : { channel: filter.channel };
      const saved = await store.list(byChannel);
      const savedIds = new Set(saved.map((entry) => entry.id));
      const all = [...saved, ...(await unsaved.list(byChannel)).filter((entry) => !savedIds.has(entry.id))];
      return filter?.limit === undefined ? all : all.slice(0, Math.max(0, filter.limit));
    },

    async redeliver(id) {
      const entry = (await unsaved.get(id)) ?? (await store.get(id));
      if (entry === undefined) throw new GpError('GP_NOT_FOUND', `dead letter ${JSON.stringify(id)}: expected the id of a dead letter, got one that is not in the list`, { id });
      const target = lanes.get(entry.channel);
      if (target === undefined) {
        throw new GpError('GP_NOT_FOUND', `dead letter ${id}: its channel "${entry.channel}" is no longer configured`, { id, channel: entry.channel });
      }
      if (target.disabled !== undefined) {
        throw new GpError('GP_CONFLICT', `dead letter ${id}: channel "${entry.channel}" is disabled (${target.disabled}); enable it first`, { id, channel: entry.channel });
      }
      const body = entry.incident === undefined ? renderNotification(entry.event, entry.template) : renderIncidentNotice(entry.incident, entry.template);
      const notification: Notification = { id: entry.transitionId, event: entry.event, incident: entry.incident, template: entry.template, body };
      const result = await attempt(target, notification, entry.attempts + 1);
      if (result.outcome === 'delivered') {
        target.counters.delivered += 1;
        target.counters.redelivered += 1;
        await unsaved.remove(id);
        await store.remove(id);
        return { delivered: true, id, channel: entry.channel };
      }
      target.counters.failed += 1;
      if (result.outcome === 'gone') disable(target, result.reason);
      const updated: DeadLetter = { ...entry, reason: `redelivery failed: ${result.reason}`, status: result.status, attempts: entry.attempts + 1, deadLetteredAt: clock() };
      try {
        await store.add(updated);
      } catch (error) {
        await unsaved.add(updated);
        report({ kind: 'dead-letter-store-failed', channel: entry.channel, transitionId: entry.transitionId, reason: errorMessage(error) });
      }
      return { delivered: false, id, channel: entry.channel, outcome: result.outcome, reason: result.reason };
    },

    async discardDeadLetter(id) {
      const fromUnsaved = await unsaved.remove(id);
      const fromStore = await store.remove(id);
      return fromUnsaved || fromStore;
    },

    enableChannel(name) {
      const target = lanes.get(name);
      if (target?.disabled === undefined) return false;
      target.disabled = undefined;
      report({ kind: 'channel-enabled', channel: name });
      return true;
    },

    close() {
      closedDone ??= (async () => {
        closed = true;
        clearTimeout(groupTimer);
        // Without a state file nothing may stay held in memory: decide now; the lanes dead-letter it below.
        if (grouper !== undefined && statePath === undefined) send(grouper.flushAll(clock()));
        closing.abort();
        wake();
        // Each lane dead-letters what it still holds (see `deliverItem`), then stops.
        await lanesIdle();
        // Held alerts and open incidents stay in the state file for the next start.
        if (statePath !== undefined) {
          stateVersion += 1;
          await saveState(statePath).catch((error: unknown) => report({ kind: 'grouping-state-failed', reason: `incident grouping state ${statePath}: ${errorMessage(error)}` }));
        }
        await Promise.all([...lanes.values()].map((target) => target.channel.close().catch(() => undefined)));
        await store.close();
      })();
      return closedDone;
    },
  };
}

/** Replaces `path` with `text` so that a crash leaves the old or the new content, never a mix. */
async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
}

/** Waits `ms`, or less when `signal` aborts (the worker is closing). */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
