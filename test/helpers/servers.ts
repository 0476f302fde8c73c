/**
 * Admin statements against the servers the integration tests use, failing with how to start a
 * server that does not answer (scripts/servers.sh). PostgreSQL: the machine's server on
 * 127.0.0.1:5432 (user postgres, trust); ClickHouse: the project's own on 127.0.0.1:8123.
 */
import pg from 'pg';

export const PG_SERVER = 'postgres://postgres@127.0.0.1:5432';
export const CLICKHOUSE_HTTP = 'http://127.0.0.1:8123';

/** Runs one statement on the `postgres` database of `server` (CREATE/DROP DATABASE and the like) and returns its rows. */
export async function pgAdmin<T extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = [], server = PG_SERVER, startName = 'postgres'): Promise<T[]> {
  const client = new pg.Client({ connectionString: `${server}/postgres` });
  try {
    await client.connect();
  } catch (cause) {
    throw new Error(`PostgreSQL not reachable at ${server.replace(/^postgres:\/\/[^@]*@/, '')} — start it with scripts/servers.sh start ${startName}`, { cause });
  }
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Runs one statement over ClickHouse's HTTP interface. */
export async function clickhouseAdmin(sql: string): Promise<string> {
  let response: Response;
  try {
    response = await fetch(CLICKHOUSE_HTTP, { method: 'POST', body: sql });
  } catch (cause) {
    throw new Error('ClickHouse not reachable on 127.0.0.1:8123 — start it with scripts/servers.sh start clickhouse', { cause });
  }
  const text = await response.text();
  if (!response.ok) throw new Error(`ClickHouse: ${sql}: ${text}`);
  return text;
}
