import { DOUBLE, DuckDBDataChunk, INTEGER, VARCHAR, type DuckDBAppender, type DuckDBConnection, type DuckDBType } from '@duckdb/node-api';

/**
 * Bulk loading into per-connection TEMP tables. A write call appends its whole batch here in
 * columnar chunks, then a single `INSERT ... SELECT` moves it into the real table with the
 * conflict rule that table needs.
 *
 * Why it looks like this (measured on 400k aggregate rows): a data chunk copies a numeric column
 * into DuckDB with one native call per 2048 rows, but a VARCHAR column costs one native call per
 * cell, and the row appender one per cell of any type. So repeated strings (stream, key, site,
 * window, metric names: the `label` columns) are staged as integer ids into a small per-table
 * dictionary and looked up again by the insert; only free text (`text`) is copied cell by cell.
 * Times are staged as DOUBLE (exact for epoch ms) and cast to BIGINT by the insert, which spares a
 * BigInt conversion per value.
 */

export type StagingColumnType = 'label' | 'text' | 'double' | 'integer';

export interface StagingTable {
  readonly name: string;
  readonly columns: ReadonlyArray<readonly [name: string, type: StagingColumnType]>;
}

/** A cell as the caller hands it over: undefined and non-finite numbers become NULL. */
export type StagingCell = string | number | null | undefined;

const SQL_TYPES: Record<StagingColumnType, string> = { label: 'INTEGER', text: 'VARCHAR', double: 'DOUBLE', integer: 'INTEGER' };
const DUCKDB_TYPES: Record<StagingColumnType, DuckDBType> = { label: INTEGER, text: VARCHAR, double: DOUBLE, integer: INTEGER };
// DuckDB's standard vector size: a data chunk holds at most this many rows.
const CHUNK_ROWS = 2048;
const LABEL = 0;
const TEXT = 1;
const NUMBER = 2;

export function labelsTableName(table: StagingTable): string {
  return `${table.name}_labels`;
}

/** The statements that create a staging table and its label dictionary (idempotent). */
export function stagingTableDdl(table: StagingTable): string[] {
  const columns = table.columns.map(([name, type]) => `${name} ${SQL_TYPES[type]}`).join(', ');
  return [
    `CREATE TEMP TABLE IF NOT EXISTS ${table.name} (${columns})`,
    `CREATE TEMP TABLE IF NOT EXISTS ${labelsTableName(table)} (id INTEGER, label VARCHAR)`,
  ];
}

/** Statements that empty a staging table and its dictionary. */
export function clearStagingSql(table: StagingTable): string[] {
  return [`DELETE FROM ${table.name}`, `DELETE FROM ${labelsTableName(table)}`];
}

/**
 * `SELECT <every column, labels resolved, listed ones cast to BIGINT> FROM <staging>`, usable as
 * a subquery whose columns carry the staging table's names. The dictionary is read once as a list
 * and indexed, which costs DuckDB less than one join per label column.
 */
export function selectStaged(table: StagingTable, bigintColumns: readonly string[] = []): string {
  const columns = table.columns.map(([name, type]) => {
    if (type === 'label') return `dictionary.labels[staged.${name} + 1] AS ${name}`;
    return bigintColumns.includes(name) ? `CAST(staged.${name} AS BIGINT) AS ${name}` : `staged.${name}`;
  });
  return `SELECT ${columns.join(', ')} FROM ${table.name} staged,
    (SELECT list(label ORDER BY id) AS labels FROM ${labelsTableName(table)}) dictionary`;
}

/**
 * The staging tables of one connection with their appenders, opened once and kept: creating an
 * appender is a round trip to DuckDB's worker pool, and small batches are the common case.
 */
export class StagingArea {
  private readonly appenders = new Map<string, { rows: DuckDBAppender; labels: DuckDBAppender }>();

  constructor(private readonly connection: DuckDBConnection) {}

  async writer(table: StagingTable): Promise<StagingWriter> {
    let appenders = this.appenders.get(table.name);
    if (appenders === undefined) {
      appenders = {
        rows: await this.connection.createAppender(table.name, 'main', 'temp'),
        labels: await this.connection.createAppender(labelsTableName(table), 'main', 'temp'),
      };
      this.appenders.set(table.name, appenders);
    }
    return new StagingWriter(appenders.rows, appenders.labels, table, () => this.discard(table));
  }

  close(): void {
    for (const table of [...this.appenders.keys()]) this.discardByName(table);
  }

  /** After a failure the appenders may hold half a chunk: drop them, the next write opens new ones. */
  private discard(table: StagingTable): void {
    this.discardByName(table.name);
  }

  private discardByName(name: string): void {
    const appenders = this.appenders.get(name);
    this.appenders.delete(name);
    for (const appender of [appenders?.rows, appenders?.labels]) {
      try {
        appender?.clear();
        appender?.closeSync();
      } catch {
        // Already unusable; nothing more to release.
      }
    }
  }
}

/** Fills a staging table chunk by chunk. End with `finish()`, or `abort()` on failure. */
export class StagingWriter {
  private readonly chunk: DuckDBDataChunk;
  private readonly cells: (string | number | null)[][];
  private readonly kinds: number[];
  private readonly labels = new Map<string, number>();
  private rows = 0;

  constructor(
    private readonly appender: DuckDBAppender,
    private readonly labelsAppender: DuckDBAppender,
    table: StagingTable,
    private readonly onAbort: () => void,
  ) {
    this.chunk = DuckDBDataChunk.create(table.columns.map(([, type]) => DUCKDB_TYPES[type]));
    this.cells = table.columns.map(() => new Array<string | number | null>(CHUNK_ROWS));
    this.kinds = table.columns.map(([, type]) => (type === 'label' ? LABEL : type === 'text' ? TEXT : NUMBER));
  }

  /** One row, cells in the table's column order. */
  add(row: readonly StagingCell[]): void {
    const at = this.rows;
    for (let column = 0; column < this.cells.length; column++) {
      const value = row[column];
      let cell: string | number | null = null;
      if (value !== undefined && value !== null) {
        const kind = this.kinds[column];
        if (kind === NUMBER) cell = typeof value === 'number' && Number.isFinite(value) ? value : null;
        else if (kind === TEXT) cell = String(value);
        else cell = this.labelId(String(value));
      }
      (this.cells[column] as (string | number | null)[])[at] = cell;
    }
    this.rows = at + 1;
    if (this.rows === CHUNK_ROWS) this.appendChunk();
  }

  /** Writes what is left and makes every row visible to the next statement of the connection. */
  finish(): void {
    if (this.rows > 0) this.appendChunk();
    this.appender.flushSync();
    for (const [label, id] of this.labels) {
      this.labelsAppender.appendInteger(id);
      this.labelsAppender.appendVarchar(label);
      this.labelsAppender.endRow();
    }
    this.labelsAppender.flushSync();
  }

  abort(): void {
    this.onAbort();
  }

  private labelId(label: string): number {
    let id = this.labels.get(label);
    if (id === undefined) {
      id = this.labels.size;
      this.labels.set(label, id);
    }
    return id;
  }

  private appendChunk(): void {
    const count = this.rows;
    const columns = count === CHUNK_ROWS ? this.cells : this.cells.map((column) => column.slice(0, count));
    this.chunk.setColumns(columns);
    this.appender.appendDataChunk(this.chunk);
    this.rows = 0;
  }
}

/**
 * Appends rows straight into a real table through one kept appender, a data chunk of up to
 * 2048 rows at a time, for rows known to be new (no conflict rule to apply). Text columns cost one
 * native call per cell, numbers one per chunk. Inside an open transaction the rows commit or roll
 * back with it. After a failure call `discard()`: the appender may hold half a chunk.
 */
export class TableAppender {
  private appender: DuckDBAppender | undefined;
  private readonly chunk: DuckDBDataChunk;
  private readonly cells: (string | number | null)[][];
  private rows = 0;

  constructor(
    private readonly connection: DuckDBConnection,
    private readonly table: string,
    columns: ReadonlyArray<'text' | 'double'>,
  ) {
    this.chunk = DuckDBDataChunk.create(columns.map((type) => (type === 'text' ? VARCHAR : DOUBLE)));
    this.cells = columns.map(() => new Array<string | number | null>(CHUNK_ROWS));
  }

  /** Opens the appender (once; it is kept between batches). */
  async open(): Promise<void> {
    this.appender ??= await this.connection.createAppender(this.table);
  }

  /**
   * The column arrays to write row `row()` of the current chunk into (text: string or null;
   * double: a finite number or null), then `next()`.
   */
  get columns(): (string | number | null)[][] {
    return this.cells;
  }

  get row(): number {
    return this.rows;
  }

  next(): void {
    this.rows++;
    if (this.rows === CHUNK_ROWS) this.appendChunk();
  }

  /** Hands what is left to DuckDB: the rows are in the table (in the open transaction, if any). */
  finish(): void {
    if (this.rows > 0) this.appendChunk();
    this.requireOpen().flushSync();
  }

  discard(): void {
    const appender = this.appender;
    this.appender = undefined;
    this.rows = 0;
    try {
      appender?.clear();
      appender?.closeSync();
    } catch {
      // Already unusable; nothing more to release.
    }
  }

  private requireOpen(): DuckDBAppender {
    if (this.appender === undefined) throw new Error(`TableAppender(${this.table}): open() first`);
    return this.appender;
  }

  private appendChunk(): void {
    const count = this.rows;
    const columns = count === CHUNK_ROWS ? this.cells : this.cells.map((column) => column.slice(0, count));
    this.chunk.setColumns(columns);
    this.requireOpen().appendDataChunk(this.chunk);
    this.rows = 0;
  }
}
