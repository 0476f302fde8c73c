import { DOUBLE, DuckDBDataChunk, INTEGER, VARCHAR, type DuckDBAppender, type DuckDBConnection, type DuckDBType } from '@duckdb/node-api';

/**
 * Bulk loading into per-connection TEMP tables. A write call appends its whole batch here in
 * columnar chunks (one native copy per column per 2048 rows, instead of one native call per
 * cell as the row appender needs), then a single `INSERT ... SELECT` moves it into the real table
 * with the conflict rule that table needs. Times are staged as DOUBLE (exact for epoch ms) and cast
 * to BIGINT by that insert, which spares a BigInt conversion per value.
 */

export type StagingColumnType = 'text' | 'double' | 'integer';

export interface StagingTable {
  readonly name: string;
  readonly columns: ReadonlyArray<readonly [name: string, type: StagingColumnType]>;
}

/** A cell as the caller hands it over; non-finite numbers become NULL. */
export type StagingCell = string | number | null | undefined;

const SQL_TYPES: Record<StagingColumnType, string> = { text: 'VARCHAR', double: 'DOUBLE', integer: 'INTEGER' };
const DUCKDB_TYPES: Record<StagingColumnType, DuckDBType> = { text: VARCHAR, double: DOUBLE, integer: INTEGER };
// DuckDB's standard vector size: a data chunk holds at most this many rows.
const CHUNK_ROWS = 2048;

export function stagingTableDdl(table: StagingTable): string {
  const columns = table.columns.map(([name, type]) => `${name} ${SQL_TYPES[type]}`).join(', ');
  return `CREATE TEMP TABLE IF NOT EXISTS ${table.name} (${columns})`;
}

/** Fills a staging table chunk by chunk. Always end with `finish()` (or `abort()` on failure). */
export class StagingWriter {
  private readonly chunk: DuckDBDataChunk;
  private readonly cells: StagingCell[][];
  private readonly numeric: boolean[];
  private rows = 0;
  written = 0;

  private constructor(
    private readonly appender: DuckDBAppender,
    table: StagingTable,
  ) {
    this.chunk = DuckDBDataChunk.create(table.columns.map(([, type]) => DUCKDB_TYPES[type]));
    this.cells = table.columns.map(() => new Array<StagingCell>(CHUNK_ROWS));
    this.numeric = table.columns.map(([, type]) => type !== 'text');
  }

  static async open(connection: DuckDBConnection, table: StagingTable): Promise<StagingWriter> {
    const appender = await connection.createAppender(table.name, 'main', 'temp');
    return new StagingWriter(appender, table);
  }

  /** One row, cells in the table's column order. */
  add(row: readonly StagingCell[]): void {
    const at = this.rows;
    for (let column = 0; column < this.cells.length; column++) {
      const value = row[column];
      (this.cells[column] as StagingCell[])[at] =
        value === undefined || (this.numeric[column] === true && !Number.isFinite(value)) ? null : value;
    }
    this.rows = at + 1;
    if (this.rows === CHUNK_ROWS) this.appendChunk();
  }

  finish(): void {
    if (this.rows > 0) this.appendChunk();
    this.appender.closeSync();
  }

  abort(): void {
    try {
      this.appender.clear();
      this.appender.closeSync();
    } catch {
      // The appender is already unusable; the caller empties the staging table anyway.
    }
  }

  private appendChunk(): void {
    const count = this.rows;
    const columns = this.cells.map((column) => (count === CHUNK_ROWS ? column : column.slice(0, count)));
    // setColumns wants exactly `count` values per column; the cells were checked in add().
    this.chunk.setColumns(columns as (string | number | null)[][]);
    this.appender.appendDataChunk(this.chunk);
    this.written += count;
    this.rows = 0;
  }
}
