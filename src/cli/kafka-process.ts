// `gridpulse process`: the engine as a member of a Kafka consumer group. Each process owns some
// partitions of the raw topics; each owned partition has its own pipeline (engine, detectors,
// alert managers, store writer) whose state is checkpointed together with the partition's offset.
// Effects are exactly once because every sink write is idempotent (aggregates upsert by
// stream/key/window/start, alerts and transitions by deterministic ids) and a partition always
// resumes from a consistent (state, offset) pair: records after the offset are computed again and
// give the same results, which overwrite themselves.
import { createRequire } from 'node:module';
import type { Consumer, EachBatchPayload, Kafka as KafkaType } from 'kafkajs';
import type { GridpulseConfig } from '../config/index.js';
import { createKafkaSink, parseKafkaUrl, rawTopicOf, type KafkaSink } from '../log/index.js';
import { GpError, type Aggregate, type AlertEvent, type OpsEvent, type StreamSchema } from '../model/index.js';
import { createStore, redactUrl, type Store } from '../stores/index.js';
import { canQueueAlertActions, createAlertActionQueue, type AlertActionQueue, type StoredAction } from './alert-actions.js';
import { createCheckpointStore, type CheckpointStore } from './checkpoint-store.js';
import { applyOperatorAction, holdsAlert, createPipeline, type Pipeline } from './pipeline.js';

export interface KafkaProcessOptions {
  config: GridpulseConfig;
  /** `kafka://host:port[,host:port...]`. */
  log: string;
  /** Consumer group id, default "gridpulse-engine". */
  group?: string | undefined;
  /** Streams to consume (their raw topics), default every stream of the config. */
  streams?: readonly string[] | undefined;
  /** Raw topic per stream instead of the defaults (`rawTopicOf`), e.g. { power: 'site-a-power' }. */
  topics?: Readonly<Record<string, string>> | undefined;
  /** Also write aggregates, alerts and ops to the Kafka output topics (see kafka-sink). */
  kafkaOutputs?: boolean | undefined;
  /** Default: config.checkpoint.intervalMs. */
  checkpointIntervalMs?: number | undefined;
  /**
   * Bounded run: each partition is processed up to the end offset it had when this process
   * started, then its engine finishes (every open window is emitted, as `gridpulse replay` does)
   * and is checkpointed as finished; the process stops once every partition it owns is finished.
   */
  untilEnd?: boolean | undefined;
  /** Kafka group session timeout, default 10000 ms (a killed member's partitions move after it). */
  sessionTimeoutMs?: number | undefined;
  /**
   * How often to look for operator actions (acknowledge, resolve, assign) queued by `gridpulse up`
   * for alerts this process holds (PostgreSQL store only; see alert-actions.ts). Default 1000 ms.
   */
  actionPollMs?: number | undefined;
  /** Store writer backlog (rows) above which consumption of a partition waits, default 50000. */
  maxPendingWrites?: number | undefined;
  onInfo?: ((message: string) => void) | undefined;
  onError?: ((error: unknown, where: string) => void) | undefined;
}

export interface KafkaProcessStats {
  /** Partitions owned now, as "topic/partition". */
  owned: string[];
  records: number;
  checkpoints: number;
  restored: number;
  corruptCheckpoints: number;
  /** Operator actions queued by the API that this process applied (or refused: the alert's status did not allow them). */
  actionsApplied: number;
  actionsRefused: number;
}

/** One owned partition, for status and metrics. */
export interface KafkaPartitionStatus {
  topic: string;
  partition: number;
  stream: string;
  /** Next offset to process. */
  offset: number;
  /** Offset of the newest checkpoint written or restored. */
  checkpointed: number;
  finished: boolean;
  /** The partition engine's watermark (−Infinity before its first reading). */
  watermark: number;
  readings: number;
  late: number;
  tooLate: number;
  aggregates: number;
  alertEvents: number;
  /** Rows its store writer holds, not yet written. */
  pendingWrites: number;
}

/** A running `gridpulse process`. */
export interface KafkaProcess {
  start(): Promise<void>;
  /** The partitions owned now, oldest first by name. */
  partitions(): KafkaPartitionStatus[];
  /** The end offset (high watermark) of every partition of the raw topics, as "topic/partition"; cached for `maxAgeMs` (default 5000). */
  endOffsets(maxAgeMs?: number): Promise<Map<string, number>>;
  /** True once the process is in the group with an assignment (possibly empty). */
  readonly joined: boolean;
  /** Resolves when a bounded run (`untilEnd`) has finished every partition it owns. */
  readonly ended: Promise<void>;
  stats(): KafkaProcessStats;
  /** Stops consuming, checkpoints every owned partition, leaves the group; idempotent. */
  close(): Promise<void>;
}

interface Slot {
  topic: string;
  partition: number;
  schema: StreamSchema;
  pipeline: Pipeline;
  /** Next offset to process: everything before it is in the pipeline's state. */
  next: number;
  /** Offset of the newest checkpoint written (or restored). */
  checkpointed: number;
  finished: boolean;
  checkpointedFinished: boolean;
  /** Kafka outputs not yet written (written before each checkpoint). */
  outputs: { aggregates: Aggregate[]; alerts: AlertEvent[]; ops: OpsEvent[] };
  /** Checkpoints of the slot, one after the other. */
  chain: Promise<void>;
  dropped: boolean;
  /** The offset of the last seek made because a batch began after `next` (NaN: none). */
  soughtTo: number;
}

const DEFAULT_GROUP = 'gridpulse-engine';
const DEFAULT_MAX_PENDING_WRITES = 50_000;
const BACKPRESSURE_CHECK_EVERY = 1000;
/** How often a member done with its share of a bounded run looks whether the group is done. */
const END_POLL_MS = 500;
const DEFAULT_ACTION_POLL_MS = 1000;
/** Done actions are kept this long in alert_actions (what was asked, by whom, and what became of it). */
const ACTIONS_KEPT_MS = 7 * 24 * 3_600_000;

/**
 * The engine over a Kafka consumer group (kafkajs), for `gridpulse process`.
 *
 * @example
 * const processor = createKafkaProcess({ config, log: 'kafka://127.0.0.1:9092', group: 'engine' });
 * await processor.start();
 * process.on('SIGTERM', () => void processor.close());
 */
export function createKafkaProcess(options: KafkaProcessOptions): KafkaProcess {
  const { config } = options;
  const { brokers } = parseKafkaUrl(options.log, '--log');
  const group = options.group ?? DEFAULT_GROUP;
  if (!/^[A-Za-z0-9._:@-]{1,249}$/.test(group)) throw new GpError('GP_INPUT_INVALID', `--group: expected a consumer group name (letters, digits and ._:@-), got ${JSON.stringify(group)}`, { field: 'group' });
  const streamNames = options.streams ?? Object.keys(config.streams);
  const schemas = streamNames.map((name) => {
    const schema = config.streams[name];
    if (schema === undefined) throw new GpError('GP_INPUT_INVALID', `--streams: expected streams of the config (${Object.keys(config.streams).join(', ')}), got ${JSON.stringify(name)}`, { field: 'streams' });
    return schema;
  });
  const topicOf = new Map(schemas.map((schema) => [rawTopicOf(schema.name, options.topics ?? {}), schema]));
  const intervalMs = options.checkpointIntervalMs ?? config.checkpoint.intervalMs;
  const maxPending = options.maxPendingWrites ?? DEFAULT_MAX_PENDING_WRITES;
  const info = options.onInfo ?? (() => undefined);
  const report = options.onError ?? (() => undefined);

  const store: Store = createStore(config.store.url, {
    retention: {
      readingsMs: config.store.retention.readingsMs,
      aggregatesMs: config.store.retention.aggregatesMs,
      alertsMs: config.store.retention.alertsMs,
      opsMs: config.store.retention.opsMs,
    },
  });
  const checkpoints: CheckpointStore = createCheckpointStore({ url: config.store.url, dataDir: config.dataDir, group });
  // Operator actions the API queues for alerts held here (a shared PostgreSQL store only).
  const actions: AlertActionQueue | undefined = checkpoints.shared && canQueueAlertActions(config.store.url) ? createAlertActionQueue(config.store.url) : undefined;
  const sink: KafkaSink | undefined = options.kafkaOutputs === true ? createKafkaSink({ url: options.log, clientId: `gridpulse-${group}-outputs` }) : undefined;

  const slots = new Map<string, Slot>();
  const opening = new Map<string, Promise<Slot>>();
  /** End offsets when the process started (bounded runs). */
  const stopAt = new Map<string, number>();
  let assignment: string[] | undefined;
  let kafka: KafkaType | undefined;
  let consumer: Consumer | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closing: Promise<void> | undefined;
  let endedResolve: () => void = () => undefined;
  const ended = new Promise<void>((resolve) => (endedResolve = resolve));
  const counters = { records: 0, checkpoints: 0, restored: 0, corruptCheckpoints: 0, actionsApplied: 0, actionsRefused: 0 };

  const slotName = (topic: string, partition: number): string => `${topic}/${partition}`;

  // ---- slots -----------------------------------------------------------------------------------

  const newPipeline = (slot: () => Slot | undefined, schema: StreamSchema): Pipeline =>
    createPipeline({
      streams: [schema],
      partitions: config.engine.partitions,
      store,
      writeReadings: config.store.writeReadings,
      ...(sink === undefined
        ? {}
        : {
            observer: {
              aggregate: (a: Aggregate) => slot()?.outputs.aggregates.push(a),
              alert: (event: AlertEvent) => slot()?.outputs.alerts.push(event),
              ops: (event: OpsEvent) => slot()?.outputs.ops.push(event),
            },
          }),
    });

  /** A slot for a newly owned partition: its newest readable checkpoint restored, else a fresh engine from offset 0. */
  const openSlot = async (topic: string, partition: number): Promise<Slot> => {
    const schema = topicOf.get(topic)!;
    // The pipeline's Kafka outputs go to the slot, which exists once the checkpoint is restored.
    const holder: { slot?: Slot } = {};
    let pipeline = newPipeline(() => holder.slot, schema);
    let next = 0;
    let finished = false;
    let marked = false;
    let restored = false;
    for await (const found of checkpoints.versions(topic, partition)) {
      if ('unreadable' in found) {
        counters.corruptCheckpoints++;
        report(new GpError('GP_CHECKPOINT_INVALID', `checkpoint version ${found.version} of ${topic}/${partition} cannot be read (${found.unreadable}); trying the one before`), 'checkpoint');
        continue;
      }
      try {
        const saved = JSON.parse(found.state) as { finished?: unknown; router?: unknown };
        pipeline.router.restore(saved.router);
        next = found.offset;
        finished = saved.finished === true;
        marked = found.finished;
        counters.restored++;
        restored = true;
        info(`${topic}/${partition}: restored checkpoint version ${found.version} (offset ${found.offset}${finished ? ', finished' : ''})`);
        break;
      } catch (error) {
        counters.corruptCheckpoints++;
        report(new GpError('GP_CHECKPOINT_INVALID', `checkpoint version ${found.version} of ${topic}/${partition} cannot be used (${(error as Error).message}); trying the one before`, {}, { cause: error }), 'checkpoint');
        // A restore that failed half-way may have touched the engine: start from a fresh one.
        pipeline = newPipeline(() => holder.slot, schema);
      }
    }
    const slot: Slot = {
      topic,
      partition,
      schema,
      pipeline,
      next,
      checkpointed: next,
      finished,
      // A finished state saved by an earlier version without the store's finished mark is saved
      // again with it, so the group's end-of-run check counts the partition.
      checkpointedFinished: finished && marked,
      outputs: { aggregates: [], alerts: [], ops: [] },
      chain: Promise.resolve(),
      dropped: false,
      soughtTo: Number.NaN,
    };
    holder.slot = slot;
    if (!restored) info(`${topic}/${partition}: no checkpoint, starting at offset 0`);
    return slot;
  };

  const slotFor = (topic: string, partition: number): Promise<Slot> => {
    const name = slotName(topic, partition);
    const existing = slots.get(name);
    if (existing !== undefined) return Promise.resolve(existing);
    let pending = opening.get(name);
    if (pending === undefined) {
      pending = openSlot(topic, partition).then((slot) => {
        slots.set(name, slot);
        opening.delete(name);
        return slot;
      });
      pending.catch(() => opening.delete(name));
      opening.set(name, pending);
    }
    return pending;
  };

  const writeOutputs = async ({ aggregates, alerts, ops }: Slot['outputs']): Promise<void> => {
    if (sink === undefined) return;
    await Promise.all([
      aggregates.length > 0 ? sink.writeAggregates(aggregates) : undefined,
      alerts.length > 0 ? sink.writeAlerts(alerts) : undefined,
      ops.length > 0 ? sink.writeOps(ops) : undefined,
    ]);
  };

  /**
   * Takes the slot's state and offset now (synchronously, so they agree), then writes them once
   * the store and the Kafka outputs hold everything computed before them: a checkpoint never runs
   * ahead of the sinks.
   */
  const checkpoint = (slot: Slot, why: string): Promise<void> => {
    if (slot.next === slot.checkpointed && slot.finished === slot.checkpointedFinished) return slot.chain;
    const offset = slot.next;
    const finished = slot.finished;
    const state = JSON.stringify({ finished, router: slot.pipeline.router.snapshot() });
    const outputs = slot.outputs;
    slot.outputs = { aggregates: [], alerts: [], ops: [] };
    slot.checkpointed = offset;
    slot.checkpointedFinished = finished;
    const run = async (): Promise<void> => {
      await slot.pipeline.writer!.flush();
      await writeOutputs(outputs);
      const version = await checkpoints.save(slot.topic, slot.partition, offset, state, { finished });
      counters.checkpoints++;
      if (why !== 'periodic') info(`${slot.topic}/${slot.partition}: checkpoint version ${version} at offset ${offset}${finished ? ' (finished)' : ''} (${why})`);
      // Kafka's committed offset follows the checkpoint, so kafkajs starts a moved partition near it
      // (the checkpoint store, not Kafka, is what a restore trusts). Refused during a rebalance: fine.
      await consumer?.commitOffsets([{ topic: slot.topic, partition: slot.partition, offset: String(offset) }]).catch(() => undefined);
    };
    const done = slot.chain.then(run);
    slot.chain = done.catch((error: unknown) => {
      // Written again at the next opportunity; a bounded run is not over until it is.
      slot.checkpointed = -1;
      if (finished) slot.checkpointedFinished = false;
      report(error, `checkpoint of ${slot.topic}/${slot.partition}`);
    });
    return done;
  };

  const checkpointAll = (why: string): Promise<unknown> => Promise.allSettled([...slots.values()].map((slot) => checkpoint(slot, why)));

  /** Partitions this process no longer owns: a last checkpoint, then the pipeline goes. */
  const dropSlot = async (slot: Slot, why: string): Promise<void> => {
    slot.dropped = true;
    slots.delete(slotName(slot.topic, slot.partition));
    await checkpoint(slot, why).catch(() => undefined);
  };

  // ---- bounded runs ----------------------------------------------------------------------------

  const finishIfAtEnd = (slot: Slot): void => {
    if (options.untilEnd !== true || slot.finished) return;
    const end = stopAt.get(slotName(slot.topic, slot.partition)) ?? 0;
    if (slot.next < end) return;
    slot.pipeline.router.finish();
    slot.finished = true;
    // Nothing more to read from it in this run.
    try {
      consumer?.pause([{ topic: slot.topic, partitions: [slot.partition] }]);
    } catch {
      // not assigned any more: nothing to pause
    }
    void checkpoint(slot, 'end of input').catch(() => undefined);
  };

  /**
   * A bounded run ends when every partition of the topics is finished — not only the ones this
   * process owns now: a member that stopped at the end of its own share while a partition sat with
   * a member that was still (re)joining left that partition unread (both exited 0, a share of the
   * readings missing). With shared checkpoints (PostgreSQL) any member's finished checkpoint
   * counts, and a member that is done with its share stays in the group, ready to take over, until
   * the others are done too. Files are one process's own: there only its assignment counts.
   */
  let endCheck: Promise<void> | undefined;
  let endTimer: NodeJS.Timeout | undefined;
  let waitingFor = '';
  const checkEnded = (): void => {
    if (options.untilEnd !== true || assignment === undefined || closing !== undefined || endCheck !== undefined) return;
    for (const name of assignment) {
      const slot = slots.get(name);
      if (slot === undefined || !slot.finished || !slot.checkpointedFinished) return;
    }
    const chains = assignment.flatMap((name) => {
      const slot = slots.get(name);
      return slot === undefined ? [] : [slot.chain];
    });
    endCheck = (async () => {
      await Promise.all(chains);
      for (const name of assignment ?? []) if (!(slots.get(name)?.checkpointedFinished ?? false)) return;
      if (checkpoints.shared) {
        const done = new Set((await checkpoints.finishedPartitions([...topicOf.keys()])).map((found) => slotName(found.topic, found.partition)));
        const open = [...stopAt].filter(([name, end]) => end > 0 && !done.has(name)).map(([name]) => name);
        if (open.length > 0) {
          const names = open.sort().join(', ');
          if (names !== waitingFor) info(`this process's partitions are finished; waiting for ${names} (other members of group ${group})`);
          waitingFor = names;
          endTimer ??= setTimeout(() => {
            endTimer = undefined;
            checkEnded();
          }, END_POLL_MS);
          return;
        }
      }
      endedResolve();
    })()
      .catch((error: unknown) => report(error, 'end of input check'))
      .finally(() => (endCheck = undefined));
  };

  // ---- consuming -------------------------------------------------------------------------------

  /** The oldest offset the broker still holds for a partition (its log start, after retention). */
  const oldestOffset = async (topic: string, partition: number): Promise<number> => {
    const admin = kafka!.admin();
    await admin.connect();
    try {
      const found = (await admin.fetchTopicOffsets(topic)).find((entry) => entry.partition === partition);
      return found === undefined ? 0 : Number(found.low);
    } finally {
      await admin.disconnect();
    }
  };

  const eachBatch = async (payload: EachBatchPayload): Promise<void> => {
    const { batch } = payload;
    const heartbeat = (): Promise<void> => payload.heartbeat();
    const isRunning = (): boolean => payload.isRunning();
    const isStale = (): boolean => payload.isStale();
    const slot = await slotFor(batch.topic, batch.partition);
    if (slot.dropped || slot.finished) return;
    const first = batch.messages[0];
    if (first === undefined) return;
    if (Number(first.offset) > slot.next) {
      // Kafka's committed offset is ahead of the checkpoint (it was committed, the checkpoint not
      // written): read from the checkpoint's offset — unless the topic's retention already deleted
      // the records from there, which no seek brings back.
      // Only when a seek to it was already made and the broker still answers from later on: one
      // batch fetched before the seek took effect says nothing.
      const sought = slot.soughtTo === slot.next;
      slot.soughtTo = slot.next;
      const low = !sought
        ? 0
        : await oldestOffset(batch.topic, batch.partition).catch((error: unknown) => {
            report(error, `oldest offset of ${batch.topic}/${batch.partition}`);
            return 0;
          });
      if (low > slot.next && Number(first.offset) >= low) {
        report(
          new GpError('GP_LOG_GAP', `${batch.topic}/${batch.partition}: records ${slot.next}…${low - 1} were deleted by the topic's retention before they were processed (the checkpoint is older than the oldest record); continuing at offset ${low}`, { topic: batch.topic, partition: batch.partition, from: slot.next, to: low - 1 }),
          'consume',
        );
        slot.next = low;
      }
      consumer!.seek({ topic: batch.topic, partition: batch.partition, offset: String(slot.next) });
      return;
    }
    const writer = slot.pipeline.writer!;
    const router = slot.pipeline.router;
    const end = options.untilEnd === true ? (stopAt.get(slotName(slot.topic, slot.partition)) ?? 0) : Number.POSITIVE_INFINITY;
    let sinceCheck = 0;
    for (const message of batch.messages) {
      const offset = Number(message.offset);
      if (offset < slot.next) continue;
      if (offset >= end || !isRunning() || isStale() || slot.dropped) break;
      if (message.value === null) router.processText('', offset);
      else router.processBytes(message.value, 0, message.value.length, offset);
      slot.next = offset + 1;
      counters.records++;
      if (++sinceCheck >= BACKPRESSURE_CHECK_EVERY) {
        sinceCheck = 0;
        // Backpressure: this partition's consumption waits while its store writer is behind.
        while (writer.pending() > maxPending) {
          await writer.waitForRoom(maxPending / 2).catch(async (error: unknown) => {
            report(error, 'store');
            await new Promise((resolve) => setTimeout(resolve, 1000));
          });
          await heartbeat().catch(() => undefined);
        }
      }
    }
    // Offsets that Kafka leaves out (transaction markers) still move the slot on.
    const last = Number(batch.lastOffset());
    if (slot.next <= last && last < end && isRunning() && !isStale() && !slot.dropped) slot.next = last + 1;
    finishIfAtEnd(slot);
    checkEnded();
  };

  /**
   * A partition a bounded run of this group finished (its windows closed) gets no more records
   * processed by the group: say so when it has records after that point — a live run, or a bounded
   * run over a topic that has grown — instead of sitting there silently.
   */
  const warnedFinished = new Set<string>();
  const warnIfFinishedEarlier = (slot: Slot): void => {
    const name = slotName(slot.topic, slot.partition);
    if (!slot.finished || warnedFinished.has(name)) return;
    if (options.untilEnd === true && (stopAt.get(name) ?? 0) <= slot.next) return;
    warnedFinished.add(name);
    const after = options.untilEnd === true ? `the ${(stopAt.get(name) ?? 0) - slot.next} records after it are` : 'records after it are';
    report(
      new GpError('GP_CONFLICT', `${name}: a bounded run (--until-end) of group ${group} finished this partition at offset ${slot.next} and closed its windows; ${after} not processed by this group — use a new --group to process the topic again`, {
        topic: slot.topic,
        partition: slot.partition,
        offset: slot.next,
      }),
      'restore',
    );
  };

  const onAssignment = async (assigned: Record<string, number[]>): Promise<void> => {
    const names = Object.entries(assigned).flatMap(([topic, partitions]) => partitions.map((partition) => slotName(topic, partition)));
    assignment = names;
    info(`assigned ${names.length === 0 ? 'no partitions' : names.sort().join(', ')} (group ${group})`);
    for (const slot of [...slots.values()]) {
      if (!names.includes(slotName(slot.topic, slot.partition))) await dropSlot(slot, 'revoked');
    }
    for (const [topic, partitions] of Object.entries(assigned)) {
      for (const partition of partitions) {
        const slot = await slotFor(topic, partition).catch((error: unknown) => {
          report(error, `restore of ${topic}/${partition}`);
          return undefined;
        });
        if (slot === undefined) continue;
        finishIfAtEnd(slot);
        warnIfFinishedEarlier(slot);
        // Start where the checkpoint left off, not at Kafka's committed offset.
        try {
          if (!slot.finished) consumer?.seek({ topic, partition, offset: String(slot.next) });
        } catch (error) {
          report(error, `seek of ${topic}/${partition}`);
        }
      }
    }
    checkEnded();
  };

  // ---- operator actions ------------------------------------------------------------------------

  let actionTimer: NodeJS.Timeout | undefined;
  let actionPoll: Promise<void> | undefined;
  let actionPolls = 0;

  /**
   * Applies the queued actions whose alert an owned partition's alert manager holds: claim, apply,
   * checkpoint the partition (the action is not in the input log; the checkpoint also waits until
   * the store holds the transition), then record the outcome, which the waiting API reads. A
   * process that dies after its claim leaves the action to be claimed again by the partition's next
   * owner once the lease runs out (if its checkpoint had the action, the retry is refused: the alert
   * is already in the asked status, and the API answers 409 saying so).
   */
  const applyAction = async (queue: AlertActionQueue, action: StoredAction): Promise<void> => {
    const slot = [...slots.values()].find((candidate) => !candidate.dropped && holdsAlert(candidate.pipeline, action.alertId));
    if (slot === undefined || !(await queue.claim(action.id))) return;
    const applied = applyOperatorAction(slot.pipeline, { action: action.action, id: action.alertId, by: action.by, note: action.note, assignee: action.assignee }, Date.now());
    // The partition moved away while the claim was made: the claim runs out and its next owner applies it.
    if (!applied.held) return;
    if (applied.alert === undefined) {
      counters.actionsRefused++;
      await queue.complete(action.id, 'refused', applied.status, { message: `alert ${action.alertId} is ${applied.status}` });
      return;
    }
    counters.actionsApplied++;
    slot.checkpointed = -1; // same offset, new state: write it
    let message: string | undefined;
    await checkpoint(slot, `operator action ${action.action} of ${action.alertId}`).catch((error: unknown) => {
      message = `applied; its checkpoint failed (${(error as Error).message}) and is written again with the next one`;
    });
    await queue.complete(action.id, 'applied', applied.alert.status, { alert: applied.alert, message });
    info(`${action.action} of alert ${action.alertId} applied (${slot.topic}/${slot.partition}${action.by === undefined ? '' : `, by ${action.by}`})`);
  };

  const pollActions = (): void => {
    const queue = actions;
    if (queue === undefined || actionPoll !== undefined || closing !== undefined || slots.size === 0) return;
    actionPoll = (async () => {
      if (actionPolls++ % 3600 === 0) await queue.prune(ACTIONS_KEPT_MS);
      for (const action of await queue.claimable(100)) await applyAction(queue, action);
    })()
      .catch((error: unknown) => report(error, 'operator actions'))
      .finally(() => (actionPoll = undefined));
  };

  // ---- group membership --------------------------------------------------------------------------

  let rejoinTimer: NodeJS.Timeout | undefined;
  let rejoins = 0;

  /** Creates a consumer, joins the group and starts consuming; kafkajs restarts it after retriable errors. */
  const join = async (): Promise<void> => {
    const sessionTimeout = options.sessionTimeoutMs ?? 10_000;
    const joining = kafka!.consumer({ groupId: group, sessionTimeout, rebalanceTimeout: Math.max(sessionTimeout, 10_000), heartbeatInterval: Math.max(100, Math.floor(sessionTimeout / 10)) });
    consumer = joining;
    joining.on(joining.events.GROUP_JOIN, (event) => {
      rejoins = 0;
      onAssignment(event.payload.memberAssignment).catch((error: unknown) => report(error, 'assignment'));
    });
    // A rebalance is starting: checkpoint now, so whoever gets a partition next starts close to here.
    joining.on(joining.events.REBALANCING, () => void checkpointAll('rebalance'));
    joining.on(joining.events.CRASH, (event) => {
      report(event.payload.error, `Kafka consumer (restarting: ${String(event.payload.restart)})`);
      if (!event.payload.restart && consumer === joining) scheduleRejoin();
    });
    try {
      await joining.connect();
      await joining.subscribe({ topics: [...topicOf.keys()], fromBeginning: true });
      await joining.run({ autoCommit: false, eachBatchAutoResolve: true, partitionsConsumedConcurrently: 1, eachBatch });
    } catch (cause) {
      await joining.disconnect().catch(() => undefined);
      throw new GpError('GP_LOG_FAILED', `Kafka at ${brokers.join(',')}: cannot join consumer group ${group}: ${(cause as Error).message}`, { brokers }, { cause });
    }
  };

  /**
   * kafkajs gave up on its consumer after an error it does not retry (e.g. a broker answering a
   * group request with INVALID_REQUEST): the process would sit outside the group for ever. Hand
   * back every partition (each with a last checkpoint, so its next owner — this process again or
   * another — restores exactly where it stopped) and join again, with backoff.
   */
  const scheduleRejoin = (): void => {
    if (closing !== undefined || rejoinTimer !== undefined) return;
    const delay = Math.min(30_000, 500 * 2 ** Math.min(rejoins, 6));
    const attempt = ++rejoins;
    rejoinTimer = setTimeout(() => {
      rejoinTimer = undefined;
      void (async () => {
        for (const pending of opening.values()) await pending.catch(() => undefined);
        for (const slot of [...slots.values()]) await dropSlot(slot, 'consumer restart');
        assignment = undefined;
        if (closing !== undefined) return;
        info(`rejoining consumer group ${group} (attempt ${attempt})`);
        await join();
      })().catch((error: unknown) => {
        report(error, 'Kafka consumer rejoin');
        scheduleRejoin();
      });
    }, delay);
  };

  let offsetsCache: { at: number; offsets: Promise<Map<string, number>> } | undefined;
  const fetchEndOffsets = async (): Promise<Map<string, number>> => {
    if (kafka === undefined) return new Map();
    const admin = kafka.admin();
    await admin.connect();
    try {
      const offsets = new Map<string, number>();
      for (const topic of topicOf.keys()) for (const { partition, high } of await admin.fetchTopicOffsets(topic)) offsets.set(slotName(topic, partition), Number(high));
      return offsets;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  };

  return {
    ended,
    stats: () => ({ owned: [...slots.keys()].sort(), ...counters }),
    get joined() {
      return assignment !== undefined;
    },

    partitions: () =>
      [...slots.values()]
        .filter((slot) => !slot.dropped)
        .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1))
        .map((slot) => {
          const engines = slot.pipeline.engines;
          const sum = (read: (stats: (typeof engines)[number]['stats']) => number): number => engines.reduce((total, engine) => total + read(engine.stats), 0);
          return {
            topic: slot.topic,
            partition: slot.partition,
            stream: slot.schema.name,
            offset: slot.next,
            checkpointed: slot.checkpointed,
            finished: slot.finished,
            watermark: engines.reduce((max, engine) => Math.max(max, engine.watermark), Number.NEGATIVE_INFINITY),
            readings: sum((stats) => stats.readings),
            late: sum((stats) => stats.late),
            tooLate: sum((stats) => stats.tooLate),
            aggregates: sum((stats) => stats.aggregates),
            alertEvents: sum((stats) => stats.alertEvents),
            pendingWrites: slot.pipeline.writer?.pending() ?? 0,
          };
        }),

    endOffsets(maxAgeMs = 5000) {
      if (offsetsCache === undefined || Date.now() - offsetsCache.at > maxAgeMs) {
        const offsets = fetchEndOffsets();
        offsetsCache = { at: Date.now(), offsets };
        offsets.catch(() => (offsetsCache = undefined));
      }
      return offsetsCache.offsets;
    },

    async start() {
      await store.ready();
      await checkpoints.ready();
      await sink?.ready();
      await actions?.ready();
      const require = createRequire(import.meta.url);
      const kafkajs = require('kafkajs') as typeof import('kafkajs');
      kafka = new kafkajs.Kafka({ brokers, clientId: `gridpulse-${group}`, logLevel: kafkajs.logLevel.NOTHING, connectionTimeout: 3000 });
      const topics = [...topicOf.keys()];
      if (options.untilEnd === true) {
        const admin = kafka.admin();
        await admin.connect();
        try {
          for (const topic of topics) {
            for (const { partition, high } of await admin.fetchTopicOffsets(topic)) stopAt.set(slotName(topic, partition), Number(high));
          }
        } finally {
          await admin.disconnect();
        }
      }
      await join();
      timer = setInterval(() => {
        void checkpointAll('periodic');
        checkEnded();
      }, intervalMs);
      if (actions !== undefined) actionTimer = setInterval(pollActions, options.actionPollMs ?? DEFAULT_ACTION_POLL_MS);
      info(`consuming ${topics.join(', ')} as group ${group}; store ${redactUrl(config.store.url)}; checkpoints in ${checkpoints.where}${sink === undefined ? '' : '; outputs to Kafka topics'}`);
    },

    close() {
      closing ??= (async () => {
        if (timer !== undefined) clearInterval(timer);
        if (endTimer !== undefined) clearTimeout(endTimer);
        if (rejoinTimer !== undefined) clearTimeout(rejoinTimer);
        if (actionTimer !== undefined) clearInterval(actionTimer);
        await actionPoll;
        // Stops fetching and waits for the batch in hand; the slots stay as they are.
        await consumer?.stop().catch((error: unknown) => report(error, 'Kafka consumer'));
        for (const pending of opening.values()) await pending.catch(() => undefined);
        await checkpointAll('shutdown');
        for (const slot of slots.values()) await slot.chain;
        await consumer?.disconnect().catch((error: unknown) => report(error, 'Kafka consumer'));
        await sink?.close().catch((error: unknown) => report(error, 'Kafka outputs'));
        await checkpoints.close().catch((error: unknown) => report(error, 'checkpoint store'));
        await actions?.close().catch((error: unknown) => report(error, 'alert actions'));
        await store.close().catch((error: unknown) => report(error, 'store'));
      })();
      return closing;
    },
  };
}
