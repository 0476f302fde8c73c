// A small PostgreSQL pool for the tables `gridpulse process` and `gridpulse up` share beside the
// store's own (engine checkpoints, queued alert actions): in the store's schema, created on open.
import { quotePostgresIdentifier, splitPostgresSchema } from '../stores/index.js';

export interface PgPool {
  query(text: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>>; rowCount: number | null }>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * Opens a pool on the store's database with the store's schema (`?schema=` of the URL) as search
 * path and runs `statements` (CREATE … IF NOT EXISTS): processes starting together on a new
 * database race to create a table, and the loser of the race — a unique violation on the catalog
 * (23505), or the table's row type or the relation found created meanwhile (42710, 42P07) — finds
 * it there on a second try, once the winner has committed. On failure the pool is ended and the
 * error thrown.
 */
export async function openPgTables(storeUrl: string, statements: readonly string[]): Promise<PgPool> {
  const pg = (await import('pg')).default;
  const { url, schema } = splitPostgresSchema(storeUrl);
  const pool = new pg.Pool({ connectionString: url, max: 2, options: `-c search_path=${quotePostgresIdentifier(schema ?? 'public')}` }) as unknown as PgPool;
  // An idle client whose server went away must not end the process; the next query reports it.
  pool.on('error', () => undefined);
  try {
    for (const statement of statements) {
      await pool.query(statement).catch(async (error: unknown) => {
        const code = (error as { code?: string }).code;
        if (code !== '23505' && code !== '42710' && code !== '42P07') throw error;
        await pool.query(statement);
      });
    }
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
  return pool;
}
