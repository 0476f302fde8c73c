import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Platform } from '../api/index.js';
import type { GridpulseConfig } from '../config/index.js';
import { parseModelFile, type ModelFile } from '../detectors/index.js';
import { datasetFromStore, DEFAULT_LABEL_TYPES, listModels, loadModel, readModelDir, trainModel, writeModelFile, type LoadedModel } from '../ml/index.js';
import { GpError, type StreamSchema } from '../model/index.js';
import type { Store } from '../stores/index.js';

// The types of the Platform's model methods (declared in src/api/platform.ts).
type InferenceRequest = Parameters<NonNullable<Platform['infer']>>[0][number];
type InferenceResult = Awaited<ReturnType<NonNullable<Platform['infer']>>>[number];
type ServingModel = NonNullable<Awaited<ReturnType<NonNullable<Platform['servingModel']>>>>;
type TrainingRequest = Parameters<NonNullable<Platform['startTraining']>>[0];
type TrainingJob = ReturnType<NonNullable<Platform['startTraining']>>;
type ModelListing = Awaited<ReturnType<NonNullable<Platform['listModels']>>>;
type StoredModel = ModelListing['models'][number];

const DAY_MS = 86_400_000;
/** Training yields to the event loop this often (ms), so the API keeps answering while a model trains. */
const YIELD_EVERY_MS = 20;

export type MlPlatformMethods = Required<Pick<Platform, 'servingModel' | 'infer' | 'startTraining' | 'trainingJob' | 'trainingJobs' | 'listModels'>> & {
  /** Releases the serving model (an ONNX session) and waits for running training jobs. */
  closeModels(): Promise<void>;
};

/**
 * Model serving and training for the live platform. The serving model is the model file of the
 * first enabled `model` detector in the config, else the newest model in `<dataDir>/models` —
 * where `POST /train-model` writes (a finished job's model then serves at once). Training reads
 * the store's history (1-minute aggregates, labelled by the failure rules' alerts) and runs on
 * this thread, yielding to the event loop every few milliseconds.
 */
export function createMlPlatformMethods(options: { config: GridpulseConfig; streams: readonly StreamSchema[]; store: Store; clock: () => number }): MlPlatformMethods {
  const { config, streams, store, clock } = options;
  const modelsDir = join(config.dataDir, 'models');
  const configured = streams.flatMap((s) => s.detectors.filter((d) => d.enabled && d.type === 'model').map((d) => d.params['path'])).find((p): p is string => typeof p === 'string');
  let trainedPath: string | undefined;
  let loaded: LoadedModel | undefined;
  const jobs = new Map<string, TrainingJob>();
  const running = new Set<Promise<void>>();
  let jobCount = 0;

  const servingPath = async (): Promise<string | undefined> => {
    if (configured !== undefined) return configured;
    if (trainedPath !== undefined) return trainedPath;
    const newest = (await listModels(modelsDir)).find((m) => m.problem === undefined);
    return newest?.path;
  };
  const serving = async (): Promise<LoadedModel | undefined> => {
    const path = await servingPath();
    if (path === undefined) return undefined;
    if (loaded?.path !== path) {
      const previous = loaded;
      loaded = await loadModel(path);
      await previous?.close();
    }
    return loaded;
  };

  const train = async (job: TrainingJob): Promise<void> => {
    const request = job.request;
    const schema =
      streams.find((s) => s.name === request.stream) ??
      (request.stream === undefined ? (streams.find((s) => s.detectors.some((d) => d.type === 'model')) ?? streams.find((s) => s.name === 'machines') ?? streams[0]) : undefined);
    if (schema === undefined) throw new GpError('GP_INPUT_INVALID', `stream: expected one of ${streams.map((s) => s.name).join(', ')}, got "${request.stream}"`, { field: 'stream' });
    let lastYield = Date.now();
    const pause = async (): Promise<void> => {
      if (Date.now() - lastYield < YIELD_EVERY_MS) return;
      await new Promise((resolve) => setImmediate(resolve));
      lastYield = Date.now();
    };
    const to = request.to ?? clock();
    const from = request.from ?? to - 7 * DAY_MS;
    job.stage = 'reading history from the store';
    const data = await datasetFromStore(store, schema, {
      from,
      to,
      ...(request.labelTypes === undefined ? {} : { labelTypes: request.labelTypes }),
      onDevice: (done, total) => {
        job.progress = 0.2 * (done / total);
      },
    });
    job.rows = data.rows;
    const labelled = data.labels === undefined ? 0 : data.labels.reduce((sum, label) => sum + label, 0);
    if ((request.kind ?? 'gbdt') !== 'isolation_forest' && (labelled === 0 || labelled === data.rows)) {
      // trainModel would say so in the terms of `gridpulse train` (--target): say it in this API's.
      const types = (request.labelTypes ?? DEFAULT_LABEL_TYPES).join(', ');
      throw new GpError(
        'GP_INPUT_INVALID',
        `label_types: expected both failing and normal minutes in stream ${schema.name} from ${new Date(from).toISOString()} to ${new Date(to).toISOString()} (a minute fails while an alert of ${types} is open), got ${labelled === 0 ? 'no failing minute' : 'only failing minutes'} in ${data.rows} rows; choose a stream and time range with such alerts, other label_types, or model isolation-forest (no labels)`,
        { field: 'label_types' },
      );
    }
    const result = await trainModel(data, {
      kind: request.kind ?? 'gbdt',
      folds: request.folds ?? 5,
      now: clock,
      onProgress: async (fraction, stage) => {
        job.progress = 0.2 + 0.8 * fraction;
        job.stage = stage;
        await pause();
      },
    });
    const path = await writeModelFile(modelsDir, result.model);
    trainedPath = path;
    const m = result.model.metrics;
    Object.assign(job, {
      status: 'succeeded',
      progress: 1,
      stage: 'done',
      finishedAt: clock(),
      modelVersion: result.model.version,
      modelPath: path,
      metrics: m === null ? null : { f1: m.f1, precision: m.precision, recall: m.recall, rocAuc: m.rocAuc },
    } satisfies Partial<TrainingJob>);
  };

  return {
    async servingModel(): Promise<ServingModel | undefined> {
      const model = await serving();
      if (model === undefined) return undefined;
      const m = model.model;
      return {
        version: m.version,
        kind: m.kind,
        path: model.path,
        features: m.features.map((f) => f.name),
        threshold: m.threshold,
        createdAt: m.createdAt,
        metrics: m.metrics === null ? null : { f1: m.metrics.f1, precision: m.metrics.precision, recall: m.metrics.recall, rocAuc: m.metrics.rocAuc, method: m.metrics.method },
      };
    },

    async infer(requests: readonly InferenceRequest[]): Promise<InferenceResult[]> {
      const model = await serving();
      if (model === undefined) throw new GpError('GP_NOT_FOUND', 'model: no model to serve: configure a model detector or train one with POST /train-model', { field: 'model' });
      const names = model.model.features.map((f) => f.name);
      requests.forEach((request, i) => {
        if (request.features.length !== names.length) {
          const where = requests.length > 1 ? `requests/${i}/features` : 'features';
          throw new GpError('GP_INPUT_INVALID', `${where}: expected ${names.length} numbers (model ${model.model.version}: ${names.join(', ')}), got ${request.features.length}`, { field: where });
        }
      });
      const scores = await model.score(requests.map((r) => r.features.map((x) => (x === null ? Number.NaN : x))));
      const threshold = model.model.threshold;
      return requests.map((r, i) => ({ deviceId: r.deviceId, sessionId: r.sessionId, score: scores[i]!, modelVersion: model.model.version, threshold, alert: scores[i]! >= threshold }));
    },

    startTraining(request: TrainingRequest): TrainingJob {
      if (request.stream !== undefined && !streams.some((s) => s.name === request.stream)) {
        throw new GpError('GP_INPUT_INVALID', `stream: expected one of ${streams.map((s) => s.name).join(', ')}, got "${request.stream}"`, { field: 'stream' });
      }
      jobCount++;
      const job: TrainingJob = {
        id: `train-${clock().toString(36)}-${jobCount}`,
        status: 'running',
        progress: 0,
        stage: 'starting',
        request,
        startedAt: clock(),
        finishedAt: null,
        modelVersion: null,
        modelPath: null,
        rows: null,
        metrics: null,
        error: null,
      };
      jobs.set(job.id, job);
      const run = train(job)
        .catch((error: unknown) => {
          Object.assign(job, { status: 'failed', stage: 'failed', finishedAt: clock(), error: error instanceof Error ? error.message : String(error) } satisfies Partial<TrainingJob>);
        })
        .finally(() => running.delete(run));
      running.add(run);
      return job;
    },

    trainingJob: (id) => jobs.get(id),
    trainingJobs: () => [...jobs.values()].sort((a, b) => b.startedAt - a.startedAt),

    async listModels(): Promise<ModelListing> {
      const entries = await readModelDir(modelsDir);
      const servingAt = await servingPath();
      const servingResolved = servingAt === undefined ? undefined : resolve(servingAt);
      const models = entries.map(({ summary, model }): StoredModel => {
        const serving = resolve(summary.path) === servingResolved;
        if (model !== undefined) return storedModel(summary.path, model, serving);
        return { file: basename(summary.path), version: summary.version, kind: summary.kind, createdAt: summary.createdAt, target: null, features: 0, threshold: 0, serving, training: null, metrics: null, problem: summary.problem ?? null };
      });
      let serving: ModelListing['serving'] = null;
      if (servingAt !== undefined) {
        const listed = models.find((m) => m.serving);
        serving = { version: listed?.version ?? (await readModel(servingAt).then((m) => m.version, () => null)), source: servingAt === configured ? 'config' : 'directory' };
      }
      return { serving, models };
    },

    async closeModels() {
      await Promise.all([...running]);
      await loaded?.close();
      loaded = undefined;
    },
  };
}

async function readModel(path: string): Promise<ModelFile> {
  return parseModelFile(JSON.parse(await readFile(path, 'utf8')), path);
}

/** A number of a model file's metrics or training block, or null (hand-written files may leave any of them out). */
function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function storedModel(path: string, model: ModelFile, serving: boolean): StoredModel {
  const m = model.metrics as Partial<NonNullable<ModelFile['metrics']>> | null;
  const t = model.training as Partial<NonNullable<ModelFile['training']>> | null;
  const c = m?.confusion;
  const confusion = c !== undefined && c !== null && [c.tp, c.fp, c.tn, c.fn].every((n) => typeof n === 'number') ? { tp: c.tp, fp: c.fp, tn: c.tn, fn: c.fn } : null;
  return {
    file: basename(path),
    version: model.version,
    kind: model.kind,
    createdAt: model.createdAt,
    target: model.target,
    features: model.features.length,
    threshold: model.threshold,
    serving,
    training: t === null || typeof t !== 'object' ? null : { source: String(t.source ?? ''), rows: numberOrNull(t.rows) ?? 0, positives: numberOrNull(t.positives), fingerprint: String(t.fingerprint ?? '') },
    metrics:
      m === null || typeof m !== 'object'
        ? null
        : {
            method: String(m.method ?? ''),
            threshold: numberOrNull(m.threshold) ?? model.threshold,
            precision: numberOrNull(m.precision),
            recall: numberOrNull(m.recall),
            f1: numberOrNull(m.f1),
            rocAuc: numberOrNull(m.rocAuc),
            averagePrecision: numberOrNull(m.averagePrecision),
            confusion,
          },
    problem: null,
  };
}
