/**
 * What Grafana does to a dashboard's SQL before PostgreSQL sees it, for the SQL this project's
 * dashboards (grafana/provisioning/dashboards/gridpulse/*.json) use, so a test can run their
 * panel, variable and annotation queries against a real schema. Grafana itself is not run.
 *
 * Grafana interpolates in two steps, and so does `interpolateGrafanaSql`:
 * 1. the template service (in the browser) replaces variables: dashboard variables (`$device`,
 *    `${device}`, `${device:sqlstring}`, `${device:raw}`) and the global ones `$__from`, `$__to`
 *    (epoch milliseconds), `$__interval` (e.g. `1m`) and `$__interval_ms`. Names it does not know
 *    are left alone, which is how `$__timeFilter(...)` reaches the server;
 * 2. the SQL data source's macro engine (on the server) expands macros: `$__timeFilter(expr)` to
 *    `expr BETWEEN '<from>' AND '<to>'` (RFC 3339, UTC), `$__timeFrom()` and `$__timeTo()` to the
 *    quoted bounds.
 * Anything else that looks like a variable or a macro once both steps are done (an unknown
 * variable, a macro not listed here, a format other than sqlstring/raw, the deprecated `[[name]]`
 * form, a `$1` parameter Grafana cannot bind) is an error: a dashboard must not rely on something
 * this substitution does not model.
 *
 * Values as Grafana writes them: a single-valued variable without a format goes in raw (the SQL
 * data sources quote only multi-valued ones); `sqlstring` quotes each value with `'`, doubling any
 * `'` inside, and joins several with `,`.
 *
 * @example
 * interpolateGrafanaSql("SELECT 1 FROM alerts WHERE key = ${device:sqlstring} AND opened_at_ms <= $__to",
 *   { from: 0, to: 1000, intervalMs: 60_000, variables: { device: "m-1" } });
 * // "SELECT 1 FROM alerts WHERE key = 'm-1' AND opened_at_ms <= 1000"
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';

export interface GrafanaQueryContext {
  /** The dashboard's time range, epoch milliseconds. */
  from: number;
  to: number;
  /** `$__interval_ms` of the panel (see `grafanaIntervalMs`). */
  intervalMs: number;
  /** Dashboard variables by name: one value, or several for a multi-valued variable. */
  variables: Readonly<Record<string, string | readonly string[]>>;
}

/** Macros of Grafana's SQL data sources that `interpolateGrafanaSql` expands (step 2). */
export const SUPPORTED_MACROS = ['timeFilter', 'timeFrom', 'timeTo'] as const;
/** Global variables that `interpolateGrafanaSql` replaces (step 1). */
export const SUPPORTED_GLOBALS = ['__from', '__to', '__interval', '__interval_ms'] as const;

// Grafana's own variable pattern: $name | [[name:format]] | ${name:format}.
const VARIABLE = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}/g;

export function interpolateGrafanaSql(sql: string, context: GrafanaQueryContext): string {
  const withVariables = sql.replace(VARIABLE, (match: string, plain?: string, bracketName?: string, _bracketFormat?: string, braced?: string, format?: string, offset?: number) => {
    if (bracketName !== undefined) throw new Error(`${match}: the deprecated [[name]] syntax is not supported; write \${${bracketName}}`);
    const name = (plain ?? braced) as string;
    // A macro call is the server's business (step 2).
    if (plain !== undefined && (SUPPORTED_MACROS as readonly string[]).includes(name.slice(2)) && name.startsWith('__') && sql[(offset ?? 0) + match.length] === '(') {
      return match;
    }
    if (name.startsWith('__')) return globalValue(name, format, context, match);
    const value = context.variables[name];
    if (value === undefined) throw new Error(`${match}: unknown variable "${name}" (known: ${Object.keys(context.variables).join(', ') || 'none'})`);
    return formatValue(value, format, match);
  });
  const withMacros = expandMacros(withVariables, context);
  const leftover = /\$\{[^}]*\}|\$\w+(\([^)]*\))?|\[\[[^\]]*\]\]/.exec(withMacros);
  if (leftover !== null) throw new Error(`${leftover[0]}: not substituted (not a known variable, global or macro)`);
  return withMacros;
}

function globalValue(name: string, format: string | undefined, context: GrafanaQueryContext, match: string): string {
  if (format !== undefined) throw new Error(`${match}: formats of global variables are not supported`);
  switch (name) {
    case '__from':
      return String(Math.round(context.from));
    case '__to':
      return String(Math.round(context.to));
    case '__interval_ms':
      return String(Math.round(context.intervalMs));
    case '__interval':
      return intervalText(context.intervalMs);
    default:
      throw new Error(`${match}: unknown global variable or macro "$${name}" (supported: ${[...SUPPORTED_GLOBALS, ...SUPPORTED_MACROS.map((m) => `__${m}()`)].join(', ')})`);
  }
}

function formatValue(value: string | readonly string[], format: string | undefined, match: string): string {
  const values = typeof value === 'string' ? [value] : value;
  const quoted = (): string => values.map((v) => `'${v.replaceAll("'", "''")}'`).join(',');
  switch (format) {
    case undefined:
      return typeof value === 'string' ? value : quoted();
    case 'sqlstring':
      return quoted();
    case 'raw':
      return values.join(',');
    default:
      throw new Error(`${match}: unsupported variable format "${format}" (supported: sqlstring, raw)`);
  }
}

function expandMacros(sql: string, context: GrafanaQueryContext): string {
  let out = '';
  let position = 0;
  const macro = /\$__(\w+)\(/g;
  for (let found = macro.exec(sql); found !== null; found = macro.exec(sql)) {
    const name = found[1] as string;
    const open = found.index + found[0].length;
    let depth = 1;
    let close = open;
    for (; close < sql.length && depth > 0; close++) {
      if (sql[close] === '(') depth++;
      else if (sql[close] === ')') depth--;
    }
    if (depth !== 0) throw new Error(`$__${name}(: no closing parenthesis`);
    const args = sql.slice(open, close - 1).trim();
    const from = `'${new Date(context.from).toISOString()}'`;
    const to = `'${new Date(context.to).toISOString()}'`;
    let expanded: string;
    switch (name) {
      case 'timeFilter':
        if (args === '') throw new Error('$__timeFilter(): expected a column or expression');
        expanded = `${args} BETWEEN ${from} AND ${to}`;
        break;
      case 'timeFrom':
      case 'timeTo':
        if (args !== '') throw new Error(`$__${name}(${args}): expected no arguments`);
        expanded = name === 'timeFrom' ? from : to;
        break;
      default:
        throw new Error(`$__${name}(...): macro not supported by this substitution (supported: ${SUPPORTED_MACROS.map((m) => `$__${m}`).join(', ')})`);
    }
    out += sql.slice(position, found.index) + expanded;
    position = close;
    macro.lastIndex = close;
  }
  return out + sql.slice(position);
}

function intervalText(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Milliseconds of a Grafana duration like `30s`, `1m`, `1h` (a leading `>` as in panel min intervals is allowed). */
export function durationMs(text: string): number {
  const match = /^>?(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (match === null) throw new Error(`duration: expected a number and ms, s, m, h or d, got ${JSON.stringify(text)}`);
  const size = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * size;
}

/**
 * `$__interval_ms` as Grafana computes it for a panel: the range divided by the panel's data points,
 * but never below the panel's min interval (else the data source's `timeInterval`). Grafana also
 * rounds the first figure to a "nice" step; that is left out, so use ranges where the min interval wins.
 */
export function grafanaIntervalMs(range: { from: number; to: number }, minInterval: string | undefined, maxDataPoints = 1000): number {
  const raw = Math.ceil((range.to - range.from) / maxDataPoints);
  return Math.max(raw, minInterval === undefined ? 0 : durationMs(minInterval));
}

// ---- the provisioning files ---------------------------------------------------------------

export interface DataSourceRef {
  type?: string;
  uid?: string;
}

export interface GrafanaTarget {
  datasource?: DataSourceRef;
  refId?: string;
  format?: string;
  rawQuery?: boolean;
  editorMode?: string;
  rawSql?: string;
}

export interface GrafanaPanel {
  id?: number;
  type: string;
  title: string;
  datasource?: DataSourceRef;
  interval?: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  options?: Record<string, unknown>;
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
}

export interface GrafanaVariable {
  name: string;
  type: string;
  datasource?: DataSourceRef;
  query?: string | { rawSql?: string };
  current?: { value?: string | string[]; text?: string | string[] };
  multi?: boolean;
  includeAll?: boolean;
}

export interface GrafanaAnnotation {
  builtIn?: number;
  name: string;
  datasource?: DataSourceRef;
  target?: GrafanaTarget;
}

export interface GrafanaDashboard {
  uid: string;
  title: string;
  id?: number | null;
  schemaVersion: number;
  panels: GrafanaPanel[];
  templating?: { list: GrafanaVariable[] };
  annotations?: { list: GrafanaAnnotation[] };
}

export interface ProvisionedDataSource {
  name: string;
  uid: string;
  type: string;
  url?: string;
  user?: string;
  jsonData?: Record<string, unknown>;
  secureJsonData?: Record<string, unknown>;
}

export interface Provisioning {
  dataSources: ProvisionedDataSource[];
  providers: { name: string; type: string; options?: { path?: string } }[];
  /** Dashboards by file name. */
  dashboards: Map<string, GrafanaDashboard>;
}

/** Reads grafana/provisioning: the data source file, the dashboard provider file and the dashboards' JSON. */
export function loadProvisioning(root: string): Provisioning {
  const dataSourceFile = YAML.parse(readFileSync(join(root, 'datasources', 'gridpulse-postgres.yaml'), 'utf8')) as { datasources?: ProvisionedDataSource[] };
  const providerFile = YAML.parse(readFileSync(join(root, 'dashboards', 'gridpulse.yaml'), 'utf8')) as { providers?: Provisioning['providers'] };
  const dashboards = new Map<string, GrafanaDashboard>();
  const folder = join(root, 'dashboards', 'gridpulse');
  for (const name of readdirSync(folder).filter((file) => file.endsWith('.json')).sort()) {
    const text = readFileSync(join(folder, name), 'utf8');
    try {
      dashboards.set(name, JSON.parse(text) as GrafanaDashboard);
    } catch (cause) {
      throw new Error(`${name}: not valid JSON`, { cause });
    }
  }
  return { dataSources: dataSourceFile.datasources ?? [], providers: providerFile.providers ?? [], dashboards };
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: GrafanaDashboard): GrafanaPanel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

export type QueryOrigin = 'panel' | 'variable' | 'annotation';

export interface DashboardQuery {
  dashboard: string;
  origin: QueryOrigin;
  /** Panel title, variable name or annotation name. */
  name: string;
  panel: GrafanaPanel | undefined;
  /** `table` or `time_series` (variables: `variable`). */
  format: string;
  sql: string;
  datasource: DataSourceRef | undefined;
}

/** Every SQL query of a dashboard: panel targets, query variables and annotation queries. */
export function dashboardQueries(dashboard: GrafanaDashboard): DashboardQuery[] {
  const queries: DashboardQuery[] = [];
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const sql = typeof variable.query === 'string' ? variable.query : variable.query?.rawSql;
    if (sql === undefined) throw new Error(`${dashboard.uid}: variable ${variable.name} has no query`);
    queries.push({ dashboard: dashboard.uid, origin: 'variable', name: variable.name, panel: undefined, format: 'variable', sql, datasource: variable.datasource });
  }
  for (const annotation of dashboard.annotations?.list ?? []) {
    if (annotation.builtIn === 1) continue;
    const sql = annotation.target?.rawSql;
    if (sql === undefined) throw new Error(`${dashboard.uid}: annotation ${annotation.name} has no rawSql`);
    queries.push({ dashboard: dashboard.uid, origin: 'annotation', name: annotation.name, panel: undefined, format: annotation.target?.format ?? 'table', sql, datasource: annotation.datasource });
  }
  for (const panel of allPanels(dashboard)) {
    for (const target of panel.targets ?? []) {
      if (target.rawSql === undefined) throw new Error(`${dashboard.uid}: panel "${panel.title}" target ${target.refId ?? '?'} has no rawSql`);
      queries.push({
        dashboard: dashboard.uid,
        origin: 'panel',
        name: panel.title,
        panel,
        format: target.format ?? 'time_series',
        sql: target.rawSql,
        datasource: target.datasource ?? panel.datasource,
      });
    }
  }
  return queries;
}
