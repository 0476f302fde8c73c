import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { ApiContext } from './context.js';
import { ApiError, notFound } from './errors.js';
import type { InferenceRequest, InferenceResult, ModelListing, Platform, TrainingJob } from './platform.js';
import {
  InferBatchBody,
  InferBatchResponse,
  InferBody,
  InferResult,
  ModelsResponse,
  ServingModelResponse,
  TrainModelBody,
  TrainingJobParams,
  TrainingJobSchema,
  TrainingJobsResponse,
  errors,
} from './schemas.js';

type InferBodyType = Static<typeof InferBody>;

function unavailable(what: string): ApiError {
  return new ApiError(503, 'GP_UNAVAILABLE', `${what} is not available in this platform`, { headers: { 'retry-after': '60' } });
}

function toRequest(body: InferBodyType): InferenceRequest {
  return {
    deviceId: body.device_id,
    sessionId: body.session_id,
    sensorType: body.sensor_type,
    startTsMs: body.start_ts_ms,
    endTsMs: body.end_ts_ms,
    featureSchemaVersion: body.feature_schema_version,
    features: body.features,
  };
}

function toResult(result: InferenceResult): Static<typeof InferResult> {
  return { device_id: result.deviceId, session_id: result.sessionId, score: result.score, model_version: result.modelVersion, threshold: result.threshold, alert: result.alert };
}

function jobJson(job: TrainingJob): Static<typeof TrainingJobSchema> {
  return {
    job_id: job.id,
    stream: job.request.stream ?? null,
    model: job.request.kind === 'isolation_forest' ? 'isolation-forest' : (job.request.kind ?? 'gbdt'),
    status: job.status,
    progress: job.progress,
    stage: job.stage,
    started_at: job.startedAt,
    finished_at: job.finishedAt,
    model_version: job.modelVersion,
    rows: job.rows,
    metrics: job.metrics,
    error: job.error,
  };
}

function modelsJson(listing: ModelListing): Static<typeof ModelsResponse> {
  return {
    serving: listing.serving,
    models: listing.models.map((m) => ({
      file: m.file,
      version: m.version,
      kind: m.kind,
      created_at: m.createdAt,
      target: m.target,
      features: m.features,
      threshold: m.threshold,
      serving: m.serving,
      training: m.training,
      metrics: m.metrics,
      problem: m.problem,
    })),
  };
}

function infer(platform: Platform): NonNullable<Platform['infer']> {
  if (platform.infer === undefined) throw unavailable('model inference');
  return platform.infer.bind(platform);
}

/**
 * Model serving and training (the edge design's inference service, the factory design's
 * `POST /train-model`): `POST /v1/infer` scores one feature vector with the serving model and
 * says whether it alerts (score ≥ the model's threshold, 0.7 by default), `POST /v1/infer/batch`
 * up to 1000 at once, `GET /v1/model` describes the serving model (its feature order),
 * `POST /train-model` starts training from the store's history in the background (202 with a job
 * id) and `GET /train-model/:id` follows its progress; `GET /api/models` lists every model file of the
 * models directory with its stored evaluation and marks the serving one (the dashboard's Models
 * page). A feature vector of the wrong length is a 400 naming the expected count.
 */
export function registerMlRoutes(app: FastifyInstance, context: ApiContext): void {
  const { platform } = context;

  app.get(
    '/v1/model',
    { schema: { tags: ['ml'], summary: 'The model that /v1/infer scores with: version, kind, feature order, threshold, cross-validated metrics', response: { 200: ServingModelResponse, ...errors(404, 503) } } },
    async () => {
      if (platform.servingModel === undefined) throw unavailable('model serving');
      const model = await platform.servingModel();
      if (model === undefined) throw new ApiError(404, 'GP_NOT_FOUND', 'no model to serve: configure a model detector or train one with POST /train-model', { field: 'model' });
      return { version: model.version, kind: model.kind, features: model.features, threshold: model.threshold, created_at: model.createdAt, metrics: model.metrics };
    },
  );

  app.get(
    '/api/models',
    {
      schema: {
        tags: ['ml'],
        summary: 'Every model file of the models directory, newest first, with its cross-validated evaluation (precision, recall, F1, ROC AUC, average precision, confusion matrix), and which one serves',
        response: { 200: ModelsResponse, ...errors(503) },
      },
    },
    async () => {
      if (platform.listModels === undefined) throw unavailable('model listing');
      return modelsJson(await platform.listModels());
    },
  );

  app.post<{ Body: InferBodyType }>(
    '/v1/infer',
    { schema: { tags: ['ml'], summary: 'Score one feature vector with the serving model; alert is true when the score reaches the threshold', body: InferBody, response: { 200: InferResult, ...errors(400, 404, 503) } } },
    async (request) => {
      const [result] = await infer(platform)([toRequest(request.body)]);
      return toResult(result!);
    },
  );

  app.post<{ Body: Static<typeof InferBatchBody> }>(
    '/v1/infer/batch',
    { schema: { tags: ['ml'], summary: 'Score up to 1000 feature vectors in one batch', body: InferBatchBody, response: { 200: InferBatchResponse, ...errors(400, 404, 503) } } },
    async (request) => {
      const results = await infer(platform)(request.body.requests.map(toRequest));
      return { results: results.map(toResult) };
    },
  );

  app.post<{ Body: Static<typeof TrainModelBody> }>(
    '/train-model',
    {
      schema: {
        tags: ['ml'],
        summary: "Start training a model from the store's history (1-minute averages, labelled by the failure rules' alerts) in the background",
        body: TrainModelBody,
        response: { 202: TrainingJobSchema, ...errors(400, 503) },
      },
    },
    async (request, reply) => {
      if (platform.startTraining === undefined) throw unavailable('training');
      const body = request.body;
      const job = platform.startTraining({
        stream: body.stream,
        kind: body.model === 'isolation-forest' ? 'isolation_forest' : body.model === 'forest' ? 'forest' : 'gbdt',
        from: body.from,
        to: body.to,
        labelTypes: body.label_types,
        folds: body.folds,
      });
      return reply.status(202).send(jobJson(job));
    },
  );

  app.get(
    '/train-model',
    { schema: { tags: ['ml'], summary: 'Training jobs of this process, newest first', response: { 200: TrainingJobsResponse, ...errors(503) } } },
    () => {
      if (platform.trainingJobs === undefined) throw unavailable('training');
      return { jobs: platform.trainingJobs().map(jobJson) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/train-model/:id',
    { schema: { tags: ['ml'], summary: 'A training job: status, progress, model version and metrics when done', params: TrainingJobParams, response: { 200: TrainingJobSchema, ...errors(404, 503) } } },
    (request) => {
      if (platform.trainingJob === undefined) throw unavailable('training');
      const job = platform.trainingJob(request.params.id);
      if (job === undefined) throw notFound('training job', 'id', request.params.id);
      return jobJson(job);
    },
  );
}
