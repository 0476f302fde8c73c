// JSON text of a large value, written in slices so the thread that writes it keeps running
// between them (the engine thread's checkpoints: tens of megabytes for 10,000 devices).

/** Where the text goes, piece by piece, in order. */
export interface TextSink {
  write(text: string): Promise<unknown>;
}

export interface JsonSliceOptions {
  /** Serializing time after which the event loop is let in (default 10 ms). */
  sliceMs?: number;
  /** Text gathered before it is handed to the sink (default 1 MiB of characters). */
  chunkChars?: number;
}

const MAX_DEPTH = 1000;

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Writes exactly the text of `JSON.stringify(value)` to `sink`, walking arrays and plain objects
 * element by element and letting the event loop run whenever a slice of `sliceMs` is used up, so
 * a large value does not hold the thread in one piece. Anything else (strings, numbers, typed
 * arrays, objects with `toJSON`) is serialized by `JSON.stringify` in one go. `value` must not
 * change until the promise settles. Resolves with the milliseconds spent serializing (the time
 * taken from the thread, without the waits).
 *
 * @example
 * const file = await open(path, 'w');
 * const busyMs = await writeJsonInSlices(file, checkpoint);
 * await file.sync();
 */
export async function writeJsonInSlices(sink: TextSink, value: unknown, options: JsonSliceOptions = {}): Promise<number> {
  const sliceMs = options.sliceMs ?? 10;
  const chunkChars = options.chunkChars ?? 1 << 20;
  let parts: string[] = [];
  let gathered = 0;
  let busy = 0;
  let sliceStart = performance.now();

  const out = (text: string): void => {
    parts.push(text);
    gathered += text.length;
  };
  const pause = async (): Promise<void> => {
    busy += performance.now() - sliceStart;
    if (gathered >= chunkChars) {
      const text = parts.join('');
      parts = [];
      gathered = 0;
      await sink.write(text);
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
    sliceStart = performance.now();
  };
  const due = (): boolean => performance.now() - sliceStart >= sliceMs;

  const isContainer = (v: unknown): v is object =>
    Array.isArray(v) || (typeof v === 'object' && v !== null && isPlainObject(v) && typeof (v as { toJSON?: unknown }).toJSON !== 'function');

  /** Writes an array or a plain object (see `isContainer`), descending into its values. */
  const emitContainer = async (v: object, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) throw new TypeError(`JSON: nested deeper than ${MAX_DEPTH} levels (a cycle?)`);
    if (Array.isArray(v)) {
      out('[');
      for (let i = 0; i < v.length; i++) {
        if (i > 0) out(',');
        const item: unknown = v[i];
        if (isContainer(item)) await emitContainer(item, depth + 1);
        else out(JSON.stringify(item) ?? 'null');
        if (due()) await pause();
      }
      out(']');
      return;
    }
    out('{');
    let first = true;
    for (const key of Object.keys(v)) {
      const item = (v as Record<string, unknown>)[key];
      const name = `${first ? '' : ','}${JSON.stringify(key)}:`;
      if (isContainer(item)) {
        out(name);
        await emitContainer(item, depth + 1);
      } else {
        // undefined, functions, symbols (and what a toJSON turns into them) have no text: the key goes too.
        const text = JSON.stringify(item) as string | undefined;
        if (text === undefined) continue;
        out(name + text);
      }
      first = false;
      if (due()) await pause();
    }
    out('}');
  };

  if (isContainer(value)) {
    await emitContainer(value, 0);
  } else {
    const text = JSON.stringify(value) as string | undefined;
    if (text === undefined) throw new TypeError('JSON: the value has no JSON text (undefined, a function or a symbol)');
    out(text);
  }
  busy += performance.now() - sliceStart;
  if (parts.length > 0) await sink.write(parts.join(''));
  return busy;
}
