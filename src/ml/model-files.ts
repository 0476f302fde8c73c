import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseModelFile, readModelFile, scoreTrees, type ModelFile } from '../detectors/index.js';
import { GpError } from '../model/index.js';
import { openOnnxModel, type OnnxScorer } from './onnx.js';

/**
 * Writes a model file as `<dir>/<version>.json` (through a temporary file and a rename, so a
 * reader never sees half a file). Returns its path.
 *
 * @example
 * const path = await writeModelFile('models', model); // models/gbdt-20250101T000000Z-1a2b3c4d.json
 */
export async function writeModelFile(dir: string, model: ModelFile): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(model.version)) {
    throw new GpError('GP_INPUT_INVALID', `version: expected letters, digits, dots, dashes and underscores, got "${model.version}"`, { field: 'version' });
  }
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${model.version}.json`);
  await writeFile(`${path}.tmp`, `${JSON.stringify(model)}\n`);
  await rename(`${path}.tmp`, path);
  return path;
}

/** One model file of a directory, as `gridpulse models list` shows it. */
export interface ModelSummary {
  path: string;
  kind: string;
  version: string;
  createdAt: string;
  target: string | null;
  features: number;
  threshold: number;
  rows: number | null;
  f1: number | null;
  rocAuc: number | null;
  fingerprint: string | null;
  /** Set instead of the rest when the file is not a valid model file. */
  problem?: string;
}

/**
 * The model files of a directory (every `*.json`), newest first. A file that is not a valid
 * model is listed with its problem rather than hidden. A missing directory has none.
 */
export async function listModels(dir: string): Promise<ModelSummary[]> {
  return (await readModelDir(dir)).map((entry) => entry.summary);
}

/** Like `listModels`, with each valid file's model as read (for callers that need more than the summary: one read per file). */
export async function readModelDir(dir: string): Promise<Array<{ summary: ModelSummary; model: ModelFile | undefined }>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const out: Array<{ summary: ModelSummary; model: ModelFile | undefined }> = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const path = join(dir, name);
    try {
      const model = parseModelFile(JSON.parse(await readFile(path, 'utf8')), path);
      const summary: ModelSummary = {
        path,
        kind: model.kind,
        version: model.version,
        createdAt: model.createdAt,
        target: model.target,
        features: model.features.length,
        threshold: model.threshold,
        rows: model.training?.rows ?? null,
        f1: model.metrics?.f1 ?? null,
        rocAuc: model.metrics?.rocAuc ?? null,
        fingerprint: model.training?.fingerprint ?? null,
      };
      out.push({ summary, model });
    } catch (error) {
      out.push({ summary: { path, kind: '?', version: name, createdAt: '', target: null, features: 0, threshold: 0, rows: null, f1: null, rocAuc: null, fingerprint: null, problem: (error as Error).message }, model: undefined });
    }
  }
  return out.sort((a, b) => b.summary.createdAt.localeCompare(a.summary.createdAt) || a.summary.path.localeCompare(b.summary.path));
}

/**
 * A model ready to score feature rows: tree models in process (synchronously underneath), ONNX
 * models through onnxruntime. Rows are model features (`model.features` order), NaN = missing.
 *
 * @example
 * const loaded = await loadModel('models/gbdt-1.json');
 * const [score] = await loaded.score([[298.1, 308.6, 1551, 42.8, 0, 10.5, 6951, 0]]);
 */
export interface LoadedModel {
  readonly path: string;
  readonly model: ModelFile;
  score(rows: readonly ArrayLike<number>[]): Promise<number[]>;
  close(): Promise<void>;
}

export async function loadModel(path: string): Promise<LoadedModel> {
  const model = readModelFile(path);
  if (model.kind === 'onnx') {
    const onnx: OnnxScorer = await openOnnxModel(model, path);
    return { path, model, score: (rows) => onnx.score(rows), close: () => onnx.close() };
  }
  return {
    path,
    model,
    score: (rows) => Promise.resolve(rows.map((row) => scoreTrees(model, row))),
    close: () => Promise.resolve(),
  };
}
