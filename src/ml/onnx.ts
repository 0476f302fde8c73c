import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { MODEL_FILE_FORMAT, MODEL_FILE_FORMAT_VERSION, type FeatureSpec, type ModelFile, type ModelInput } from '../detectors/index.js';
import { GpError } from '../model/index.js';

/**
 * Bring-your-own models in ONNX. A user's graph is described by a gridpulse model file of kind
 * `onnx` (its inputs, how its features are computed from them — the "feature mapping" — and the
 * names of the graph's input and output), and scored with onnxruntime-node, which is loaded only
 * when an ONNX model is used. onnxruntime answers asynchronously, so ONNX models are scored by
 * `POST /v1/infer` and `gridpulse eval`, in batches, never in the per-reading detector.
 *
 * `logisticRegressionOnnx` writes a small ONNX graph itself (protobuf by hand: no Python here), so
 * that the ONNX path can be tested with a model whose scores are known in closed form.
 */

// ---- a minimal protobuf writer (the subset ONNX files need) ----

class ProtoWriter {
  private readonly chunks: number[] = [];
  varint(value: number): this {
    let v = BigInt(value);
    if (v < 0n) v += 1n << 64n;
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      this.chunks.push(byte);
    } while (v !== 0n);
    return this;
  }
  private tag(field: number, wireType: number): this {
    return this.varint((field << 3) | wireType);
  }
  int(field: number, value: number): this {
    return this.tag(field, 0).varint(value);
  }
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2).varint(data.length);
    for (const b of data) this.chunks.push(b);
    return this;
  }
  string(field: number, text: string): this {
    return this.bytes(field, new TextEncoder().encode(text));
  }
  message(field: number, inner: ProtoWriter): this {
    return this.bytes(field, inner.finish());
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

const FLOAT = 1;

function floatTensor(name: string, dims: number[], values: readonly number[]): ProtoWriter {
  const t = new ProtoWriter();
  for (const d of dims) t.int(1, d);
  t.int(2, FLOAT);
  t.string(8, name);
  const raw = new Uint8Array(new Float32Array(values).buffer);
  return t.bytes(9, raw);
}

function valueInfo(name: string, dims: Array<number | string>): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of dims) shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  const tensorType = new ProtoWriter().int(1, FLOAT).message(2, shape);
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

function node(op: string, inputs: string[], outputs: string[], name: string): ProtoWriter {
  const n = new ProtoWriter();
  for (const i of inputs) n.string(1, i);
  for (const o of outputs) n.string(2, o);
  return n.string(3, name).string(4, op);
}

/**
 * An ONNX model (IR 8, opset 13) of a logistic regression: input `inputName` float [N, k],
 * output `outputName` = sigmoid(X · weights + bias), float [N, 1].
 *
 * @example
 * writeFileSync('lr.onnx', logisticRegressionOnnx([0.5, -1], 0.1));
 */
export function logisticRegressionOnnx(weights: readonly number[], bias: number, names: { inputName?: string; outputName?: string } = {}): Uint8Array {
  const input = names.inputName ?? 'X';
  const output = names.outputName ?? 'Y';
  const k = weights.length;
  const graph = new ProtoWriter()
    .message(1, node('MatMul', [input, 'W'], ['XW'], 'matmul'))
    .message(1, node('Add', ['XW', 'B'], ['Z'], 'add'))
    .message(1, node('Sigmoid', ['Z'], [output], 'sigmoid'))
    .string(2, 'logistic_regression')
    .message(5, floatTensor('W', [k, 1], weights))
    .message(5, floatTensor('B', [1], [bias]))
    .message(11, valueInfo(input, ['N', k]))
    .message(12, valueInfo(output, ['N', 1]));
  return new ProtoWriter()
    .int(1, 8)
    .string(2, 'gridpulse')
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, '').int(2, 13))
    .finish();
}

/**
 * A gridpulse model file (kind `onnx`) describing an ONNX graph: `inputs` are the raw values it
 * reads (names of stream metrics or CSV columns; machine roles match as for tree models) and
 * `features` how the graph's input columns are computed from them (default: the inputs as they
 * are, in order). Its fingerprint is the SHA-256 of the .onnx bytes.
 *
 * @example
 * const descriptor = onnxModelFile({ onnxFile: 'lr.onnx', onnxBytes, inputs: ['torque_nm', 'rpm'], version: 'lr-1' });
 */
export function onnxModelFile(options: {
  onnxFile: string;
  onnxBytes: Uint8Array;
  inputs: readonly string[];
  features?: FeatureSpec[];
  version: string;
  inputName?: string;
  outputName?: string;
  threshold?: number;
  target?: string | null;
  now?: () => number;
}): ModelFile {
  const inputs: ModelInput[] = options.inputs.map((name) => ({ name, type: 'number' }));
  return {
    format: MODEL_FILE_FORMAT,
    formatVersion: MODEL_FILE_FORMAT_VERSION,
    kind: 'onnx',
    version: options.version,
    createdAt: new Date((options.now ?? Date.now)()).toISOString(),
    target: options.target ?? null,
    inputs,
    features: options.features ?? inputs.map((input) => ({ name: input.name, kind: 'input', input: input.name })),
    threshold: options.threshold ?? 0.7,
    trees: [],
    baseScore: 0,
    sampleSize: 0,
    onnx: { file: options.onnxFile, inputName: options.inputName ?? 'X', outputName: options.outputName ?? 'Y' },
    metrics: null,
    training: { source: options.onnxFile, rows: 0, positives: null, fingerprint: createHash('sha256').update(options.onnxBytes).digest('hex'), seconds: 0, options: {} },
  };
}

/** A loaded ONNX session: scores rows of features (float32), in one batch per call. */
export interface OnnxScorer {
  score(rows: readonly ArrayLike<number>[]): Promise<number[]>;
  close(): Promise<void>;
}

interface OrtTensor {
  readonly data: ArrayLike<number | bigint>;
  readonly dims: readonly number[];
}
interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface OrtModule {
  InferenceSession: { create(data: Uint8Array): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => unknown;
}

/**
 * Opens the ONNX graph of a model file of kind `onnx` (`modelPath` is the model file's own path:
 * `onnx.file` is relative to it). Checks that the graph has the declared input and output.
 */
export async function openOnnxModel(model: ModelFile, modelPath: string): Promise<OnnxScorer> {
  if (model.kind !== 'onnx' || model.onnx === undefined) throw new GpError('GP_INPUT_INVALID', `${modelPath}: kind: expected "onnx", got "${model.kind}"`, { field: 'kind' });
  const spec = model.onnx;
  const file = isAbsolute(spec.file) ? spec.file : resolve(dirname(modelPath), spec.file);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new GpError('GP_FILE_NOT_FOUND', `${modelPath}: onnx/file: no such file ${file}`, { path: file, field: 'onnx/file' }, { cause: error });
  }
  // Loaded lazily: the platform starts without the native runtime unless an ONNX model is used.
  const ort = (await import('onnxruntime-node')) as unknown as OrtModule;
  let session: OrtSession;
  try {
    session = await ort.InferenceSession.create(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (error) {
    throw new GpError('GP_INPUT_INVALID', `${file}: expected an ONNX model onnxruntime can load, got: ${(error as Error).message}`, { path: file }, { cause: error });
  }
  if (!session.inputNames.includes(spec.inputName)) {
    throw new GpError('GP_INPUT_INVALID', `${modelPath}: onnx/inputName: expected one of the graph's inputs (${session.inputNames.join(', ')}), got "${spec.inputName}"`, { field: 'onnx/inputName' });
  }
  if (!session.outputNames.includes(spec.outputName)) {
    throw new GpError('GP_INPUT_INVALID', `${modelPath}: onnx/outputName: expected one of the graph's outputs (${session.outputNames.join(', ')}), got "${spec.outputName}"`, { field: 'onnx/outputName' });
  }
  const width = model.features.length;
  return {
    async score(rows) {
      if (rows.length === 0) return [];
      const data = new Float32Array(rows.length * width);
      rows.forEach((row, r) => {
        for (let f = 0; f < width; f++) data[r * width + f] = row[f]!;
      });
      const output = (await session.run({ [spec.inputName]: new ort.Tensor('float32', data, [rows.length, width]) }))[spec.outputName]!;
      // One score per row, or class probabilities [rows, 2]: take the failure class.
      const perRow = output.data.length / rows.length;
      return rows.map((_, r) => Number(output.data[r * perRow + perRow - 1]));
    },
    close: () => session.release(),
  };
}
