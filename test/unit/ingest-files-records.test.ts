import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { splitCsvLine, detectDelimiter } from '../../src/ingest/file-csv.js';
import { readRecords, readRecordBatches, sniffFile, type SourceRecord } from '../../src/ingest/file-source.js';
import { detectColumns, FILE_KEY_FIELD, ROW_TIME_FIELD, type DetectedLayout } from '../../src/ingest/detect-columns.js';
import { GpError } from '../../src/model/index.js';

const fixtures = new URL('../fixtures/', import.meta.url);
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'gp-records-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function records(path: string, layout: DetectedLayout, maxLineBytes?: number): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const record of readRecords(path, layout, maxLineBytes === undefined ? {} : { maxLineBytes })) out.push(record);
  return out;
}

async function layoutOf(path: string, hints: Parameters<typeof detectColumns>[3] = {}): Promise<DetectedLayout> {
  const sniffed = await sniffFile(path);
  return detectColumns(sniffed.sample, sniffed.header, path, hints);
}

describe('splitCsvLine', () => {
  it('splits quoted fields with delimiters and escaped quotes inside', () => {
    assert.deepEqual(splitCsvLine('m-1,"Flat 2, Elm Road","say ""hi""",3.5', ','), ['m-1', 'Flat 2, Elm Road', 'say "hi"', '3.5']);
    assert.deepEqual(splitCsvLine('"",a,', ','), ['', 'a', '']);
    assert.deepEqual(splitCsvLine('a;"b;c";d', ';'), ['a', 'b;c', 'd']);
  });

  it('treats a stray quote inside an unquoted field as text and reports an open quote as unfinished', () => {
    assert.deepEqual(splitCsvLine('5" pipe,2', ','), ['5" pipe', '2']);
    assert.equal(splitCsvLine('m-1,"not closed,2', ','), undefined);
  });

  it('picks the delimiter from the header, ignoring ones inside quotes', () => {
    assert.equal(detectDelimiter('time;kwh;"meter, id"'), ';');
    assert.equal(detectDelimiter('time\tkwh\tmeter'), '\t');
    assert.equal(detectDelimiter('a|b|c'), '|');
    assert.equal(detectDelimiter('only'), ',');
  });
});

describe('readRecords on CSV', () => {
  it('reads the LCL excerpt into row objects with line numbers', async () => {
    const path = new URL('lcl-2meters-excerpt.csv', fixtures).pathname;
    const all = await records(path, await layoutOf(path));
    assert.equal(all.length, 300);
    assert.deepEqual(all[0], { offset: 2, kind: 'object', value: { meter_id: 'MAC000002', timestamp_utc: '2013-01-01 00:00:00', kwh_per_halfhour: '0.219' } });
    const last = all[299];
    assert.ok(last !== undefined && last.kind === 'object');
    assert.equal(last.offset, 301);
    assert.equal(last.value.meter_id, 'MAC000003');
  });

  it('keeps quoted commas, escaped quotes and a quoted newline in one field', async () => {
    const path = file('quoted.csv', 'meter_id,timestamp,kwh,note\nm-1,2024-01-01T00:00:00Z,0.5,"Flat 2, Elm Road"\nm-1,2024-01-01T00:30:00Z,0.7,"two\nlines, ""quoted"""\nm-1,2024-01-01T01:00:00Z,0.9,\n');
    const all = await records(path, await layoutOf(path));
    assert.deepEqual(
      all.map((record) => [record.offset, record.kind === 'object' ? record.value.note : record.kind]),
      [
        [2, 'Flat 2, Elm Road'],
        [3, 'two\nlines, "quoted"'],
        [5, undefined],
      ],
    );
    const third = all[2];
    assert.ok(third !== undefined && third.kind === 'object');
    assert.equal('note' in third.value, false, 'an empty cell is left out, so it reads as missing');
  });

  it('turns a row with the wrong number of columns into an error record and goes on', async () => {
    const path = file('ragged.csv', 'meter_id,timestamp,kwh\nm-1,2024-01-01T00:00:00Z,0.5\nm-1,2024-01-01T00:30:00Z\nm-1,2024-01-01T01:00:00Z,0.9,extra\nm-1,2024-01-01T01:30:00Z,1.1\n');
    const all = await records(path, await layoutOf(path));
    assert.deepEqual(all[1], { offset: 3, kind: 'error', reason: 'row has 2 columns, the header has 3', expected: '3 columns', got: '2' });
    assert.deepEqual(all[2], { offset: 4, kind: 'error', reason: 'row has 4 columns, the header has 3', expected: '3 columns', got: '4' });
    assert.deepEqual(all[3], { offset: 5, kind: 'object', value: { meter_id: 'm-1', timestamp: '2024-01-01T01:30:00Z', kwh: '1.1' } });
  });

  it('an unclosed quote costs its own row only', async () => {
    const path = file('stray.csv', 'meter_id,timestamp,kwh\nm-1,"2024-01-01T00:00:00Z,0.5\nm-1,2024-01-01T00:30:00Z,0.7\nm-1,2024-01-01T01:00:00Z,0.9\n');
    const all = await records(path, await layoutOf(path));
    assert.equal(all.length, 3);
    assert.equal(all[0]?.kind, 'error');
    assert.equal(all[0]?.offset, 2);
    assert.match(all[0]?.kind === 'error' ? all[0].reason : '', /unterminated quoted field/);
    assert.deepEqual(
      all.slice(1).map((record) => (record.kind === 'object' ? record.value.kwh : record.kind)),
      ['0.7', '0.9'],
    );
  });

  it('turns an over-long row into an error naming its size and the limit, and goes on', async () => {
    const long = `m-1,2024-01-01T00:30:00Z,${'9'.repeat(2000)}`;
    const path = file('long.csv', `meter_id,timestamp,kwh\nm-1,2024-01-01T00:00:00Z,0.5\n${long}\nm-1,2024-01-01T01:00:00Z,0.9\n`);
    const all = await records(path, await layoutOf(path), 1024);
    assert.deepEqual(all[1], { offset: 3, kind: 'error', reason: `line of ${long.length} bytes exceeds the 1 KiB limit` });
    assert.equal(all[2]?.kind, 'object');
  });

  it('reads gzip and semicolon-delimited files the same way', async () => {
    const text = 'meter_id;timestamp;kwh\nm-1;2024-01-01T00:00:00Z;0,5\n';
    const plain = file('semi.csv', text);
    const compressed = file('semi.csv.gz', gzipSync(Buffer.from(text)));
    const layout = await layoutOf(plain);
    assert.deepEqual(await records(compressed, layout), await records(plain, layout));
    assert.deepEqual(await records(plain, layout), [{ offset: 2, kind: 'object', value: { meter_id: 'm-1', timestamp: '2024-01-01T00:00:00Z', kwh: '0,5' } }]);
  });

  it('refuses a file whose header lacks the layout time column, listing its columns', async () => {
    const layout = await layoutOf(new URL('lcl-2meters-excerpt.csv', fixtures).pathname);
    const other = file('other.csv', 'meter_id,when,kwh\nm-1,1,2\n');
    await assert.rejects(records(other, layout), (error: unknown) => error instanceof GpError && error.code === 'GP_INPUT_UNKNOWN_LAYOUT' && error.message.includes('"timestamp_utc"') && error.message.includes('"when"'));
  });

  it('synthesizes row times and the file device for AI4I (--time @row --key @file), counting bad rows', async () => {
    const path = new URL('ai4i2020-excerpt.csv', fixtures).pathname;
    const layout = await layoutOf(path, { time: '@row', key: '@file', rowInterval: 60_000, start: Date.UTC(2024, 0, 1) });
    const all = await records(path, layout);
    assert.equal(all.length, 200);
    const first = all[0];
    assert.ok(first !== undefined && first.kind === 'object');
    assert.equal(first.value[ROW_TIME_FIELD], Date.UTC(2024, 0, 1));
    assert.equal(first.value[FILE_KEY_FIELD], 'ai4i2020-excerpt');
    assert.equal(first.value['Torque [Nm]'], '42.8');
    const tenth = all[9];
    assert.ok(tenth !== undefined && tenth.kind === 'object');
    assert.equal(tenth.value[ROW_TIME_FIELD], Date.UTC(2024, 0, 1) + 9 * 60_000);

    const broken = file('ai4i-broken.csv', 'UDI,Torque [Nm]\n1,40\n2\n3,42\n');
    const brokenRecords = await records(broken, await layoutOf(broken, { time: '@row', metrics: ['Torque [Nm]'] }));
    assert.deepEqual(
      brokenRecords.map((record) => (record.kind === 'object' ? record.value[ROW_TIME_FIELD] : record.kind)),
      [Date.UTC(2020, 0, 1), 'error', Date.UTC(2020, 0, 1) + 2 * 60_000],
    );
  });
});

describe('readRecords on NDJSON', () => {
  const lines = ['{"meterId":"m-1","timestamp":1700000000000,"usageKw":1.5}', '', 'not json', '{"meterId":"m-2","timestamp":1700000060000,"usageKw":2.5}'];

  it('hands each non-empty line on as text for the engine to decode', async () => {
    const path = file('power.ndjson', lines.join('\n') + '\n');
    const all = await records(path, await layoutOf(path));
    assert.deepEqual(all, [
      { offset: 1, kind: 'json', text: lines[0] },
      { offset: 3, kind: 'json', text: 'not json' },
      { offset: 4, kind: 'json', text: lines[3] },
    ]);
  });

  it('reads NDJSON without a layout (records that name their own fields) the same way', async () => {
    const path = file('power-2.ndjson', lines.join('\n'));
    const out: SourceRecord[] = [];
    for await (const record of readRecords(path, undefined)) out.push(record);
    assert.deepEqual(out.map((record) => record.offset), [1, 3, 4]);
    assert.ok(out.every((record) => record.kind === 'json'));
  });

  it('decodes lines itself when it must add the file device, and reports malformed ones', async () => {
    const path = file('press-7.ndjson.gz', gzipSync(Buffer.from('{"ts":1700000000,"rpm":1500}\nnot json\n[{"ts":1700000060,"rpm":1510}]\n42\n')));
    const layout = await layoutOf(path);
    assert.equal(layout.keyField, undefined);
    const all = await records(path, layout);
    assert.deepEqual(all[0], { offset: 1, kind: 'object', value: { ts: 1700000000, rpm: 1500, [FILE_KEY_FIELD]: 'press-7' } });
    assert.equal(all[1]?.kind, 'error');
    assert.match(all[1]?.kind === 'error' ? all[1].reason : '', /^malformed JSON/);
    assert.deepEqual(all[2], { offset: 3, kind: 'object', value: { ts: 1700000060, rpm: 1510, [FILE_KEY_FIELD]: 'press-7' } });
    assert.deepEqual(all[3], { offset: 4, kind: 'error', reason: 'expected a JSON object, got a number', expected: 'a JSON object', got: 'a number' });
  });

  it('batches hold the same records as the flat stream', async () => {
    const path = new URL('lcl-2meters-excerpt.csv', fixtures).pathname;
    const layout = await layoutOf(path);
    const flat: SourceRecord[] = [];
    for await (const batch of readRecordBatches(path, layout)) flat.push(...batch);
    assert.deepEqual(flat, await records(path, layout));
  });
});
