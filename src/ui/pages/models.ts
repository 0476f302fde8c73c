/**
 * Models: the serving model, every model file of the platform's models directory with its
 * cross-validated evaluation (the confusion matrix of the selected one), the training jobs with
 * their progress, and a form that starts training. Jobs are polled only while one runs.
 */
import { ApiError, api } from '../api.js';
import type { ModelListing, ServingModel, StoredModel, StreamInfo, TrainableModel, TrainingJob } from '../api-types.js';
import type { PageContext, PageFactory } from '../context.js';
import { field, h, replaceChildren, select, type Child } from '../dom.js';
import { formatCount, formatDuration, formatTime } from '../format.js';
import { errorBox, notify } from '../notify.js';
import { keyValues, pageHeader, panel } from '../widgets.js';

/** How often the jobs are read while one runs (none is read while none runs). */
const POLL_MS = 1500;
const MODEL_KINDS: ReadonlyArray<readonly [TrainableModel, string]> = [
  ['gbdt', 'gbdt (boosted trees)'],
  ['forest', 'random forest'],
  ['isolation-forest', 'isolation forest'],
];
const KIND_LABEL: Record<string, string> = { gbdt: 'gbdt', forest: 'forest', isolation_forest: 'isolation forest', onnx: 'ONNX' };
const COLUMNS = ['Version', 'Kind', 'Created', 'Features', 'Rows', 'Precision', 'Recall', 'F1', 'ROC AUC', 'AP'];
const TRAIN_HINT = 'gridpulse train … --out <data dir>/models';

/** Metrics in [0, 1] with three decimals, so a column lines up. */
function metric(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(3);
}

function createdTime(iso: string): string {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? formatTime(ms) : '–';
}

/** The stream training uses when none is named: as the platform picks it (a stream with a model detector, else machines, else the first). */
function defaultStream(streams: readonly StreamInfo[]): string {
  return (streams.find((s) => s.detectors.includes('model')) ?? streams.find((s) => s.name === 'machines') ?? streams[0])?.name ?? '';
}

function noModelsText(): Child[] {
  return ['No models yet: train one here or with ', h('code', { text: TRAIN_HINT }), '.'];
}

export const modelsPage: PageFactory = (context: PageContext) => {
  let destroyed = false;
  let listing: ModelListing | undefined;
  let serving: ServingModel | null = null;
  let servingProblem: unknown;
  let jobs: TrainingJob[] = [];
  let jobsProblem: unknown;
  let selected = context.query.get('model') ?? '';
  /** A model to flash once its row is drawn (the one a job just trained). */
  let flashVersion = '';
  let pollTimer: number | undefined;

  const problems = h('div', { class: 'problems' });
  const updated = h('span', { class: 'muted small', testid: 'models-updated' });
  const servingHost = h('div', { testid: 'serving-model' });
  const modelsBody = h('tbody');
  const evaluationHost = h('div', { testid: 'model-evaluation' });
  const evaluationTitle = h('h2', { text: 'Evaluation' });
  const setEvaluationTitle = (version: string | undefined): void => {
    replaceChildren(evaluationTitle, 'Evaluation', version === undefined ? null : [' of ', h('code', { class: 'title-version', text: version })]);
  };
  const jobsHost = h('div', { testid: 'training-jobs' });

  // ---- the training form ----
  const streamSelect = h('select', { testid: 'train-stream' });
  const kindSelect = select('train-model', MODEL_KINDS, 'gbdt', () => undefined);
  const startButton = h('button', { class: 'button button-primary', testid: 'train-start', type: 'submit', text: 'Train' });
  const formError = h('p', { class: 'form-error', testid: 'train-error', attrs: { role: 'alert' } });
  const configNote = h('p', { class: 'muted small', testid: 'train-config-note' });
  const form = h(
    'form',
    { class: 'train-form', testid: 'train-form' },
    h('div', { class: 'controls' }, field('Stream', streamSelect), field('Model', kindSelect), startButton),
    formError,
    h('p', {
      class: 'muted small',
      text: "Learns from the stream's last 7 days of 1-minute averages per device; a minute counts as a failure while an overstrain, heat-dissipation, power-failure or tool-wear alert was open. Judged by 5-fold stratified cross-validation; the new model then serves.",
    }),
    configNote,
  );

  const persistSelection = (): void => {
    const query = new URLSearchParams();
    if (selected) query.set('model', selected);
    context.setQuery(query);
  };

  // ---- rendering ----
  const renderServing = (): void => {
    if (serving === null) {
      const unavailable = servingProblem instanceof ApiError && servingProblem.status === 503;
      replaceChildren(
        servingHost,
        servingProblem !== undefined && !unavailable
          ? errorBox(servingProblem, 'the serving model')
          : h('p', { class: 'muted', testid: 'serving-none', text: unavailable ? 'Model serving is not available in this platform.' : 'No model serves yet: train one with the form, and it serves at once.' }),
      );
      return;
    }
    const m = serving.metrics;
    const source = listing?.serving?.source === 'config' ? 'named by a model detector in the config' : "the newest model of the platform's models directory";
    const stat = (label: string, testid: string, value: string, detail = ''): HTMLElement =>
      h('div', { class: 'stat' }, h('div', { class: 'stat-label', text: label }), h('div', { class: 'stat-value', testid, text: value }), h('div', { class: 'stat-sub', text: detail }));
    replaceChildren(
      servingHost,
      h(
        'p',
        { class: 'serving-line' },
        h('code', { class: 'model-version', testid: 'serving-version', text: serving.version }),
        ' ',
        h('span', { class: 'badge', testid: 'serving-kind', text: KIND_LABEL[serving.kind] ?? serving.kind }),
        h('span', { class: 'muted small', text: ` ${serving.features.length} features · created ${createdTime(serving.created_at)} · ${source}` }),
      ),
      h(
        'div',
        { class: 'stats serving-stats' },
        stat('Threshold', 'serving-threshold', metric(serving.threshold), 'score at which a reading alerts'),
        stat('Precision', 'serving-precision', metric(m?.precision), 'alerts that were failures'),
        stat('Recall', 'serving-recall', metric(m?.recall), 'failures that alerted'),
        stat('F1', 'serving-f1', metric(m?.f1)),
        stat('ROC AUC', 'serving-roc-auc', metric(m?.rocAuc)),
      ),
      h('p', { class: 'muted small', text: m === null ? 'The model file stores no evaluation (trained without labels).' : (m.method ?? '') }),
    );
  };

  const modelRow = (model: StoredModel): HTMLTableRowElement => {
    const isSelected = model.version === selected;
    const version = h(
      'td',
      { class: 'model-version-cell', dataset: { label: 'Version' } },
      h('button', {
        class: 'link-button',
        testid: 'model-select',
        type: 'button',
        text: model.version,
        title: model.problem === null ? 'show the confusion matrix and training details' : 'show the problem',
        attrs: { 'aria-pressed': String(isSelected) },
        on: {
          click: () => {
            selected = model.version;
            persistSelection();
            renderModels();
          },
        },
      }),
      model.serving ? h('span', { class: 'badge badge-serving', testid: 'model-serving', text: 'serving' }) : null,
    );
    const row = h('tr', {
      class: `model-row${isSelected ? ' selected' : ''}${model.version === flashVersion ? ' flash' : ''}`,
      testid: 'model-row',
      dataset: { version: model.version, serving: String(model.serving), kind: model.kind },
    });
    if (model.problem !== null) {
      row.append(version, h('td', { class: 'model-problem', testid: 'model-problem', text: model.problem, attrs: { colspan: String(COLUMNS.length - 1) }, dataset: { label: 'Problem' } }));
      return row;
    }
    const m = model.metrics;
    const t = model.training;
    const cell = (label: string, text: string, testid?: string): HTMLTableCellElement => h('td', { dataset: { label }, text, ...(testid ? { testid } : {}) });
    row.append(
      version,
      cell('Kind', KIND_LABEL[model.kind] ?? model.kind),
      cell('Created', createdTime(model.created_at)),
      cell('Features', formatCount(model.features)),
      cell('Rows', t === null ? '–' : `${formatCount(t.rows)}${t.positives === null ? '' : ` (${formatCount(t.positives)} failing)`}`),
      cell('Precision', metric(m?.precision), 'model-precision'),
      cell('Recall', metric(m?.recall), 'model-recall'),
      cell('F1', metric(m?.f1), 'model-f1'),
      cell('ROC AUC', metric(m?.rocAuc), 'model-roc-auc'),
      cell('AP', metric(m?.averagePrecision), 'model-ap'),
    );
    return row;
  };

  const confusionMatrix = (model: StoredModel): HTMLElement => {
    const c = model.metrics?.confusion;
    if (model.metrics === null) return h('p', { class: 'muted', text: 'This model was trained without labels: it stores no evaluation to show.' });
    if (c === null || c === undefined) return h('p', { class: 'muted', text: 'The model file stores no confusion matrix.' });
    const count = (testid: string, n: number, good: boolean, title: string): HTMLTableCellElement => h('td', { class: good ? 'cm-good' : 'cm-bad', testid, text: formatCount(n), title });
    return h(
      'table',
      { class: 'table confusion', testid: 'confusion-matrix' },
      h('thead', {}, h('tr', {}, h('th', { text: 'actual ╲ model' }), h('th', { text: 'alerted' }), h('th', { text: 'not alerted' }))),
      h(
        'tbody',
        {},
        h(
          'tr',
          {},
          h('th', { text: 'failure' }),
          count('confusion-tp', c.tp, true, 'true positives: failing minutes the model alerted on'),
          count('confusion-fn', c.fn, false, 'false negatives: failing minutes the model missed'),
        ),
        h(
          'tr',
          {},
          h('th', { text: 'normal' }),
          count('confusion-fp', c.fp, false, 'false positives: normal minutes the model alerted on'),
          count('confusion-tn', c.tn, true, 'true negatives: normal minutes without an alert'),
        ),
      ),
    );
  };

  const renderEvaluation = (model: StoredModel | undefined): void => {
    if (model === undefined) {
      setEvaluationTitle(undefined);
      replaceChildren(evaluationHost, h('p', { class: 'muted', text: listing?.models.length ? 'Select a model above.' : 'No model to evaluate yet.' }));
      return;
    }
    setEvaluationTitle(model.version);
    if (model.problem !== null) {
      replaceChildren(evaluationHost, h('p', { class: 'model-problem', text: `${model.file} is not a valid model file: ${model.problem}` }));
      return;
    }
    const m = model.metrics;
    const t = model.training;
    replaceChildren(
      evaluationHost,
      h(
        'div',
        { class: 'evaluation' },
        h(
          'div',
          {},
          confusionMatrix(model),
          m === null ? null : h('p', { class: 'muted small', text: `At score ≥ ${metric(m.threshold)}: ${m.method}.` }),
        ),
        keyValues('model-details', [
          ['file', h('code', { text: model.file })],
          ['kind', KIND_LABEL[model.kind] ?? model.kind],
          ['target', model.target ?? '– (unsupervised)'],
          ['alert threshold', metric(model.threshold)],
          ['training data', t === null ? '–' : t.source],
          ['rows', t === null ? '–' : `${formatCount(t.rows)}${t.positives === null ? '' : `, ${formatCount(t.positives)} failing`}`],
          ['fingerprint', t === null ? '–' : h('code', { text: t.fingerprint.slice(0, 16), title: `SHA-256 of the training data: ${t.fingerprint}` })],
        ]),
      ),
    );
  };

  const renderModels = (): void => {
    const models = listing?.models ?? [];
    if (!models.some((m) => m.version === selected)) selected = (models.find((m) => m.serving) ?? models.find((m) => m.problem === null))?.version ?? '';
    replaceChildren(
      modelsBody,
      models.length === 0 ? h('tr', { class: 'empty-row', testid: 'models-empty' }, h('td', { attrs: { colspan: String(COLUMNS.length) } }, ...noModelsText())) : models.map(modelRow),
    );
    flashVersion = '';
    renderEvaluation(models.find((m) => m.version === selected));
    configNote.textContent =
      listing?.serving?.source === 'config' ? 'A model detector in the config names the serving model: a model trained here is listed, but serves only once the config names its file.' : '';
  };

  const renderJobs = (): void => {
    if (jobsProblem !== undefined) {
      const unavailable = jobsProblem instanceof ApiError && jobsProblem.status === 503;
      replaceChildren(jobsHost, unavailable ? h('p', { class: 'muted', text: 'Training is not available in this platform.' }) : errorBox(jobsProblem, 'the training jobs'));
      return;
    }
    if (jobs.length === 0) {
      replaceChildren(jobsHost, h('p', { class: 'muted', testid: 'jobs-empty', text: 'No training jobs since the platform started: start one with the form.' }));
      return;
    }
    const now = Date.now();
    replaceChildren(
      jobsHost,
      h(
        'ul',
        { class: 'jobs' },
        ...jobs.map((job) => {
          const percent = Math.round(Math.max(0, Math.min(1, job.progress)) * 100);
          const took = (job.finished_at ?? now) - job.started_at;
          return h(
            'li',
            { class: `job job-${job.status}`, testid: 'training-job', dataset: { jobId: job.job_id, status: job.status } },
            h(
              'div',
              { class: 'job-head' },
              h('span', { class: `badge job-status-${job.status}`, testid: 'job-status', text: job.status }),
              h('span', { class: 'muted small', text: `${job.model}${job.stream === null ? '' : ` on ${job.stream}`} · started ${formatTime(job.started_at, now)} · ${job.status === 'running' ? 'for' : 'took'} ${formatDuration(took)}` }),
            ),
            h(
              'div',
              { class: 'job-progress' },
              h(
                'span',
                { class: 'bar-track', attrs: { role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(percent), 'aria-label': 'training progress' } },
                h('span', { class: `bar job-bar-${job.status}`, attrs: { style: `width: ${percent}%` } }),
              ),
              h('span', { class: 'job-percent', testid: 'job-progress', text: `${percent}%` }),
            ),
            h('div', { class: 'muted small', testid: 'job-stage', text: job.stage }),
            job.status === 'succeeded' && job.model_version !== null
              ? h(
                  'div',
                  { class: 'small', testid: 'job-result' },
                  'model ',
                  h('code', { text: job.model_version }),
                  ` · F1 ${metric(job.metrics?.f1)} · ROC AUC ${metric(job.metrics?.rocAuc)}${job.rows === null ? '' : ` · ${formatCount(job.rows)} rows`}`,
                )
              : null,
            job.error !== null ? h('div', { class: 'form-error small', testid: 'job-error', text: job.error }) : null,
          );
        }),
      ),
    );
  };

  // ---- loading ----
  const loadModels = async (): Promise<void> => {
    const nextListing = await api.models();
    // Asked only when something serves: a 404 would be logged in the browser's console.
    const nextServing =
      nextListing.serving === null
        ? { model: null, problem: undefined }
        : await api.servingModel().then(
            (model) => ({ model, problem: undefined as unknown }),
            (error: unknown) => ({ model: null, problem: error instanceof ApiError && error.status === 404 ? undefined : error }),
          );
    if (destroyed) return;
    listing = nextListing;
    serving = nextServing.model;
    servingProblem = nextServing.problem;
    renderServing();
    renderModels();
    updated.textContent = `updated ${formatTime(Date.now())}`;
  };

  const poll = (): void => {
    window.clearTimeout(pollTimer);
    pollTimer = window.setTimeout(() => void loadJobs(), POLL_MS);
  };

  const loadJobs = async (): Promise<void> => {
    const runningBefore = new Set(jobs.filter((j) => j.status === 'running').map((j) => j.job_id));
    try {
      jobs = await api.trainingJobs();
      jobsProblem = undefined;
    } catch (error) {
      jobsProblem = error;
    }
    if (destroyed) return;
    renderJobs();
    const finished = jobs.filter((j) => runningBefore.has(j.job_id) && j.status !== 'running');
    const trained = finished.filter((j) => j.status === 'succeeded' && j.model_version !== null);
    for (const job of finished) {
      if (job.status === 'succeeded') notify(`Trained ${job.model_version ?? 'a model'}: F1 ${metric(job.metrics?.f1)}`);
      else notify(`Training failed: ${job.error ?? job.stage}`, 'error');
    }
    const newest = trained[0]?.model_version;
    if (newest) {
      selected = newest;
      flashVersion = newest;
      persistSelection();
    }
    if (trained.length > 0) await refreshModels();
    if (!destroyed && jobsProblem === undefined && jobs.some((j) => j.status === 'running')) poll();
  };

  const refreshModels = async (): Promise<void> => {
    try {
      await loadModels();
      replaceChildren(problems);
    } catch (error) {
      if (!destroyed) replaceChildren(problems, errorBox(error, 'the models'));
    }
  };

  const reload = (): void => {
    void refreshModels();
    void loadJobs();
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    startButton.disabled = true;
    formError.textContent = '';
    const body = { ...(streamSelect.value ? { stream: streamSelect.value } : {}), model: kindSelect.value as TrainableModel };
    api
      .startTraining(body)
      .then((job) => {
        if (destroyed) return;
        jobs = [job, ...jobs.filter((j) => j.job_id !== job.job_id)];
        jobsProblem = undefined;
        renderJobs();
        poll();
      })
      .catch((error: unknown) => {
        if (!destroyed) formError.textContent = error instanceof Error ? error.message : String(error);
      })
      .finally(() => {
        startButton.disabled = false;
      });
  });

  context
    .streams()
    .then((streams) => {
      if (destroyed) return;
      replaceChildren(streamSelect, ...streams.map((s) => h('option', { value: s.name, text: s.name })));
      streamSelect.value = defaultStream(streams);
    })
    .catch((error: unknown) => {
      if (!destroyed) formError.textContent = `Could not load the streams — ${(error as Error).message}`;
    });

  const element = h(
    'div',
    {},
    pageHeader('Models', updated, h('button', { class: 'button button-quiet', testid: 'models-reload', type: 'button', text: 'Reload', on: { click: reload } })),
    problems,
    h(
      'div',
      { class: 'grid-2' },
      panel('Serving model', { testid: 'serving-panel' }, servingHost),
      panel('Train a model', { testid: 'training-panel' }, form, h('h3', { class: 'subhead', text: 'Training jobs' }), jobsHost),
    ),
    panel(
      'Models',
      { testid: 'models-panel' },
      h(
        'div',
        { class: 'table-wrap' },
        h('table', { class: 'table numeric models-table', testid: 'models-table' }, h('thead', {}, h('tr', {}, ...COLUMNS.map((t) => h('th', { text: t })))), modelsBody),
      ),
      h('p', { class: 'muted small', text: "Every model file of the platform's models directory, newest first. Precision, recall, F1, ROC AUC and average precision (AP) as measured at training, by cross-validation." }),
    ),
    h('section', { class: 'panel', testid: 'evaluation-panel' }, h('header', { class: 'panel-header' }, evaluationTitle), evaluationHost),
  );

  void refreshModels();
  void loadJobs();
  return {
    element,
    destroy() {
      destroyed = true;
      window.clearTimeout(pollTimer);
    },
  };
};
