/**
 * Time-series charts on uPlot (canvas; stays smooth with 100k+ points). A `TimeChart` owns one
 * uPlot instance, follows its container's width, draws alert markers as shaded bands under the
 * series, and exposes how many points it shows (`data-points`) for tests.
 */
import uPlot from 'uplot';
import { h } from './dom.js';
import { formatNumber, formatTick, formatTime } from './format.js';

export interface ChartSeries {
  label: string;
  /** A CSS color or a `--custom-property` of :root. */
  color: string;
  unit?: string | null | undefined;
  width?: number;
  dash?: number[];
  /** Fill under the line (area chart). */
  fill?: boolean;
  /** A series drawn only as the edge of a band (min/max): thin and out of the legend's way. */
  faint?: boolean;
}

/** A shaded interval (an alert) drawn under the series; times in epoch ms, `to` undefined = still open. */
export interface ChartMarker {
  from: number;
  to: number | undefined;
  /** A CSS color or a `--custom-property` of :root. */
  color: string;
}

export interface TimeChartOptions {
  testid: string;
  series: ChartSeries[];
  height?: number;
  /** Fill between two series (indexes into `series`, upper first), e.g. max and min around an average. */
  band?: [upper: number, lower: number];
  /** Fixed x range in epoch ms (the requested window), or null to fit the data. */
  xRange?: () => [number, number] | null;
  markers?: () => readonly ChartMarker[];
  /** Keep 0 in view on the y axis (loads, rates). */
  zeroBased?: boolean;
  emptyText?: string;
  /** Charts with the same key share the cursor (hover one, see the same time on all). */
  syncKey?: string;
}

export function cssColor(color: string): string {
  if (!color.startsWith('--')) return color;
  return getComputedStyle(document.documentElement).getPropertyValue(color).trim() || '#888';
}

function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  if (!hex?.[1]) return color;
  const n = parseInt(hex[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** Tick spacings allowed on the time axis, in seconds: never below one second. */
const TIME_INCREMENTS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 2 * 86_400, 7 * 86_400, 30 * 86_400, 365 * 86_400];

function pad(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** 24-hour tick labels; seconds when ticks are less than a minute apart; the date under the first tick of each day. */
function timeTickLabels(_u: uPlot, splits: number[], _axis: number, _space: number, increment: number): string[] {
  let previousDay = '';
  return splits.map((seconds) => {
    const date = new Date(seconds * 1000);
    const day = date.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' });
    const clock = increment >= 86_400 ? '' : increment < 60 ? `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}` : `${pad(date.getHours())}:${pad(date.getMinutes())}`;
    const label = day !== previousDay ? (clock ? `${clock}\n${day}` : day) : clock;
    previousDay = day;
    return label;
  });
}

export class TimeChart {
  readonly element: HTMLElement;
  private readonly plotHost: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly plot: uPlot;
  private readonly resizeObserver: ResizeObserver;
  private readonly height: number;
  private pointCount = 0;

  constructor(private readonly options: TimeChartOptions) {
    this.height = options.height ?? 220;
    this.plotHost = h('div', { class: 'chart-plot' });
    this.empty = h('div', { class: 'chart-empty', text: options.emptyText ?? 'No data in this range yet' });
    this.element = h('div', { class: 'chart', testid: options.testid, dataset: { points: '0' } }, this.plotHost, this.empty);
    const axisColor = cssColor('--text-muted');
    const gridColor = cssColor('--grid');
    const axis = (extra: Partial<uPlot.Axis> = {}): uPlot.Axis => ({
      stroke: axisColor,
      grid: { stroke: gridColor, width: 1 },
      ticks: { stroke: gridColor, width: 1, size: 4 },
      font: '11px system-ui, sans-serif',
      ...extra,
    });
    const series: uPlot.Series[] = [
      { label: 'time', value: (_u, v) => (v === null ? '–' : formatTime(v * 1000)) },
      ...options.series.map((s): uPlot.Series => {
        const stroke = cssColor(s.color);
        return {
          label: s.label,
          stroke: s.faint ? withAlpha(stroke, 0.45) : stroke,
          width: s.width ?? (s.faint ? 1 : 1.5),
          ...(s.dash ? { dash: s.dash } : {}),
          ...(s.fill ? { fill: withAlpha(stroke, 0.15) } : {}),
          points: { show: false },
          spanGaps: false,
          value: (_u, v) => (v === null ? '–' : formatNumber(v, s.unit)),
        };
      }),
    ];
    const bands: uPlot.Band[] = options.band
      ? [{ series: [options.band[0] + 1, options.band[1] + 1], fill: withAlpha(cssColor(options.series[options.band[0]]?.color ?? '#888'), 0.12) }]
      : [];
    const opts: uPlot.Options = {
      width: 600,
      height: this.height,
      series,
      bands,
      cursor: { drag: { x: true, y: false }, points: { size: 6 }, ...(options.syncKey ? { sync: { key: options.syncKey } } : {}) },
      legend: { live: true },
      scales: {
        x: {
          time: true,
          range: (_u, min, max) => {
            const fixed = options.xRange?.();
            return fixed ? [fixed[0] / 1000, fixed[1] / 1000] : [min, max];
          },
        },
        y: {
          range: (_u, min, max) => {
            if (min === null || max === null || !Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
            const low = options.zeroBased ? Math.min(0, min) : min;
            const span = max - low || Math.abs(max) || 1;
            return [options.zeroBased && low === 0 ? 0 : low - span * 0.08, max + span * 0.08];
          },
        },
      },
      axes: [axis({ space: 70, incrs: TIME_INCREMENTS, values: timeTickLabels }), axis({ size: 56, values: (_u, ticks, _axis, _space, increment) => ticks.map((t) => formatTick(t, increment)) })],
      hooks: { drawAxes: [(u) => this.drawMarkers(u)] },
    };
    this.plot = new uPlot(opts, [[], ...options.series.map(() => [])], this.plotHost);
    this.resizeObserver = new ResizeObserver(() => this.fit());
    this.resizeObserver.observe(this.element);
  }

  /** Number of time points currently drawn. */
  get points(): number {
    return this.pointCount;
  }

  /** `times` in epoch ms, one column per series (null = no value). */
  setData(times: readonly number[], columns: ReadonlyArray<ReadonlyArray<number | null>>): void {
    const xs = Float64Array.from(times, (t) => t / 1000);
    this.pointCount = xs.length;
    this.element.dataset.points = String(xs.length);
    this.element.classList.toggle('is-empty', xs.length === 0);
    const data: uPlot.AlignedData = [xs, ...columns.map((c) => c as Array<number | null>)];
    this.plot.setData(data);
  }

  /** What the chart says while it has no data. */
  setEmptyText(text: string): void {
    this.empty.textContent = text;
  }

  /** Redraws (for changed markers) without new data. */
  redraw(): void {
    this.plot.redraw(false, true);
  }

  destroy(): void {
    this.resizeObserver.disconnect();
    this.plot.destroy();
  }

  private fit(): void {
    const width = Math.floor(this.element.clientWidth);
    if (width > 0 && width !== this.plot.width) this.plot.setSize({ width, height: this.height });
  }

  private drawMarkers(u: uPlot): void {
    const markers = this.options.markers?.() ?? [];
    let drawn = 0;
    this.element.dataset.markers = '0';
    if (markers.length === 0) return;
    const { ctx } = u;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    for (const marker of markers) {
      const color = cssColor(marker.color);
      const x0 = Math.max(left, u.valToPos(marker.from / 1000, 'x', true));
      const x1 = marker.to === undefined ? left + width : Math.min(left + width, u.valToPos(marker.to / 1000, 'x', true));
      if (!Number.isFinite(x0) || !Number.isFinite(x1) || x1 < left || x0 > left + width) continue;
      ctx.fillStyle = withAlpha(color, 0.16);
      ctx.fillRect(x0, top, Math.max(x1 - x0, 3 * devicePixelRatio), height);
      ctx.fillStyle = color;
      ctx.fillRect(x0, top, Math.max(1, devicePixelRatio), height);
      drawn++;
    }
    ctx.restore();
    this.element.dataset.markers = String(drawn);
  }
}

/** A fixed-size ring of (time, values...) rows for charts fed by live events. */
export class RollingSeries {
  readonly times: number[] = [];
  readonly columns: Array<Array<number | null>>;

  constructor(
    columns: number,
    private readonly capacity: number,
  ) {
    this.columns = Array.from({ length: columns }, () => []);
  }

  push(time: number, values: ReadonlyArray<number | null>): void {
    this.times.push(time);
    this.columns.forEach((column, i) => column.push(values[i] ?? null));
    if (this.times.length > this.capacity) {
      this.times.shift();
      for (const column of this.columns) column.shift();
    }
  }
}
