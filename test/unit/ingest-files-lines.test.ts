import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { readLines, readLineBatches, type LineItem } from '../../src/ingest/line-reader.js';
import { GpError } from '../../src/model/index.js';

const fixtures = new URL('../fixtures/', import.meta.url);
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gp-lines-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function collect(source: Parameters<typeof readLines>[0], maxLineBytes?: number): Promise<LineItem[]> {
  const items: LineItem[] = [];
  for await (const item of readLines(source, maxLineBytes === undefined ? {} : { maxLineBytes })) items.push(item);
  return items;
}

function texts(items: LineItem[]): string[] {
  return items.map((item) => ('text' in item ? item.text : `<oversize ${item.bytes}>`));
}

describe('readLines', () => {
  it('gives the same lines for a gzip file as for the plain file, recognising gzip by its magic bytes', async () => {
    const plainPath = new URL('lcl-2meters-excerpt.csv', fixtures);
    const plain = readFileSync(plainPath);
    // Named .csv on purpose: detection must not rely on the extension.
    const gzipPath = join(dir, 'lcl-compressed.csv');
    writeFileSync(gzipPath, gzipSync(plain));
    const fromPlain = await collect(plainPath.pathname);
    const fromGzip = await collect(gzipPath);
    assert.equal(fromPlain.length, 301);
    assert.deepEqual(fromGzip, fromPlain);
    assert.deepEqual(fromPlain[1], { offset: 2, text: 'MAC000002,2013-01-01 00:00:00,0.219' });
  });

  it('recognises gzip in a stream source too, even when it arrives in tiny chunks', async () => {
    const compressed = gzipSync(Buffer.from('a\nb\nc'));
    const chunks = [...compressed].map((byte) => Buffer.from([byte]));
    assert.deepEqual(texts(await collect(Readable.from(chunks))), ['a', 'b', 'c']);
  });

  it('drops the BOM and the CR of CRLF line ends (AI4I excerpt)', async () => {
    const items = await collect(new URL('ai4i2020-excerpt.csv', fixtures).pathname);
    assert.equal(items.length, 201);
    const first = items[0];
    assert.ok(first !== undefined && 'text' in first);
    assert.ok(first.text.startsWith('UDI,Product ID,Type,Air temperature [K]'));
    assert.ok(first.text.endsWith(',RNF'), 'no trailing CR');
    assert.deepEqual(items[1], { offset: 2, text: '1,M14860,M,298.1,308.6,1551,42.8,0,0,0,0,0,0,0' });
  });

  it('keeps line numbers exact across empty lines and returns a last line without a newline', async () => {
    const path = join(dir, 'gaps.txt');
    writeFileSync(path, 'one\r\n\r\nthree\n\nfive');
    assert.deepEqual(await collect(path), [
      { offset: 1, text: 'one' },
      { offset: 2, text: '' },
      { offset: 3, text: 'three' },
      { offset: 4, text: '' },
      { offset: 5, text: 'five' },
    ]);
  });

  it('turns a 10 MB line into an oversize item and goes on with the lines after it', async () => {
    const path = join(dir, 'huge.ndjson');
    const out = createWriteStream(path);
    out.write('{"meterId":"m-1","timestamp":1,"usageKw":1}\n');
    const piece = Buffer.alloc(1024 * 1024, 'x');
    out.write('{"meterId":"m-1","note":"');
    for (let i = 0; i < 10; i += 1) out.write(piece);
    out.write('"}\r\n');
    out.write('{"meterId":"m-1","timestamp":3,"usageKw":3}\n');
    out.end();
    await finished(out);
    const hugeBytes = '{"meterId":"m-1","note":"'.length + 10 * 1024 * 1024 + '"}'.length;
    const items = await collect(path);
    assert.equal(items.length, 3);
    assert.deepEqual(items[1], { offset: 2, oversize: true, bytes: hugeBytes });
    assert.deepEqual(items[2], { offset: 3, text: '{"meterId":"m-1","timestamp":3,"usageKw":3}' });
  });

  it('applies the limit to lines that span chunks and to lines inside one chunk alike', async () => {
    const lines = ['short', 'x'.repeat(40), 'also short', 'y'.repeat(40), 'end'];
    const content = Buffer.from(lines.join('\n'));
    // 7-byte chunks: every long line spans several chunks.
    const chunks: Buffer[] = [];
    for (let at = 0; at < content.length; at += 7) chunks.push(content.subarray(at, at + 7));
    const expected = ['short', '<oversize 40>', 'also short', '<oversize 40>', 'end'];
    assert.deepEqual(texts(await collect(Readable.from(chunks), 20)), expected);
    assert.deepEqual(texts(await collect(Readable.from([content]), 20)), expected);
    // Exactly at the limit is still a line; a CR does not count against it.
    assert.deepEqual(texts(await collect(Readable.from([Buffer.from('12345\r\n123456\n')]), 5)), ['12345', '<oversize 6>']);
  });

  it('decodes multi-byte UTF-8 split across chunks', async () => {
    const content = Buffer.from('Zürich;€5\nnext');
    const chunks = [content.subarray(0, 2), content.subarray(2, 8), content.subarray(8)];
    assert.deepEqual(texts(await collect(Readable.from(chunks))), ['Zürich;€5', 'next']);
  });

  it('batches carry the same lines as single reads', async () => {
    const path = new URL('lcl-2meters-excerpt.csv', fixtures).pathname;
    const flat: LineItem[] = [];
    for await (const batch of readLineBatches(path)) flat.push(...batch);
    assert.deepEqual(flat, await collect(path));
  });

  it('reports a missing file with GP_FILE_NOT_FOUND', async () => {
    await assert.rejects(collect(join(dir, 'nope.csv')), (error: unknown) => error instanceof GpError && error.code === 'GP_FILE_NOT_FOUND' && error.message.includes('nope.csv'));
  });

  it('reports truncated gzip as bad input after the lines it could read', async () => {
    const path = join(dir, 'cut.gz');
    const whole = gzipSync(Buffer.from(Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n')));
    writeFileSync(path, whole.subarray(0, whole.length - 20));
    const seen: LineItem[] = [];
    await assert.rejects(
      (async () => {
        for await (const item of readLines(path)) seen.push(item);
      })(),
      (error: unknown) => error instanceof GpError && error.code === 'GP_INPUT_INVALID' && error.message.includes('cut.gz'),
    );
    assert.ok(seen.length > 1000, `lines before the damage are still delivered (got ${seen.length})`);
  });
});
