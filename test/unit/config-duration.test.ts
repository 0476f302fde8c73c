import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, parseDuration } from '../../src/config/index.js';
import { GpError } from '../../src/model/index.js';

test('parseDuration reads each unit, compound texts and plain milliseconds', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('15s'), 15_000);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('7d'), 604_800_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1h 30m'), 5_400_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration(250), 250);
  assert.equal(parseDuration('0'), 0);
});

test('parseDuration rejects text it cannot read with GP_CONFIG_INVALID naming what it got', () => {
  for (const bad of ['10 minutes', '30', '', '-5s', '30m1h', '1m1m', '0.5ms', 'ten']) {
    assert.throws(
      () => parseDuration(bad),
      (error: unknown) =>
        error instanceof GpError &&
        error.code === 'GP_CONFIG_INVALID' &&
        error.message.startsWith('expected ') &&
        error.message.includes(`got ${JSON.stringify(bad)}`),
      bad,
    );
  }
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.throws(() => parseDuration(bad), (error: unknown) => error instanceof GpError && error.code === 'GP_CONFIG_INVALID', String(bad));
  }
});

test('formatDuration writes the most compact text and parseDuration reads it back', () => {
  assert.equal(formatDuration(60_000), '1m');
  assert.equal(formatDuration(90_000), '1m30s');
  assert.equal(formatDuration(15_000), '15s');
  assert.equal(formatDuration(500), '500ms');
  assert.equal(formatDuration(86_400_000 + 1_000), '1d1s');
  assert.equal(formatDuration(0), '0s');
  for (const milliseconds of [1, 999, 1_000, 61_001, 5_400_000, 1_209_600_000]) {
    assert.equal(parseDuration(formatDuration(milliseconds)), milliseconds);
  }
});
