import { GpError } from '../model/index.js';

/** 1234567 → "1.23 M". */
export function formatRate(perSecond: number): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)} k`;
  return perSecond.toFixed(0);
}

/** A positive whole number from a command-line flag, or a user error naming the flag. */
export function parseCount(text: string, flag: string): number {
  const value = Number(text.replace(/_/g, ''));
  if (!Number.isInteger(value) || value < 0) throw new GpError('GP_INPUT_INVALID', `${flag}: expected a whole number ≥ 0, got ${JSON.stringify(text)}`, { flag });
  return value;
}

/** A progress line on a terminal: rewritten in place, throttled to a few updates a second. */
export class Progress {
  private last = 0;
  private readonly started = Date.now();
  constructor(
    private readonly enabled: boolean,
    private readonly total: number | undefined,
  ) {}
  update(done: number, records: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 200) return;
    this.last = now;
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = formatRate(records / seconds);
    if (this.total && this.total > 0) {
      const fraction = Math.min(1, done / this.total);
      const width = 30;
      const filled = Math.round(fraction * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(1)}%  ${records.toLocaleString('en')} records  ${rate}/s `);
    } else process.stderr.write(`\r${records.toLocaleString('en')} records  ${rate}/s `);
  }
  done(): void {
    if (this.enabled) process.stderr.write('\n');
  }
}
