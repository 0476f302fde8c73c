import type { Command } from 'commander';
import { loadConfig } from '../../config/index.js';
import { createStore, redactUrl, type SchemaReport } from '../../stores/index.js';

interface MigrateOptions {
  config?: string | undefined;
  store?: string | undefined;
  json?: boolean | undefined;
}

export interface MigrateResult {
  store: string;
  kind: string;
  /** Absent for stores without versioned migrations (DuckDB creates its tables in place). */
  schema: SchemaReport | null;
}

/**
 * `gridpulse migrate`: brings each configured store's schema to this build's version and says what
 * it did. Safe to run any number of times and while gridpulse runs: migrations are versioned,
 * idempotent and taken under the store's migration lock, so concurrent starters apply each once.
 * `gridpulse up` migrates on start as well; this command lets an operator do it ahead of a rollout.
 */
export async function runMigrate(options: MigrateOptions): Promise<MigrateResult[]> {
  const config = loadConfig({ ...(options.config === undefined ? {} : { path: options.config }), storeUrl: options.store });
  const results: MigrateResult[] = [];
  // A fan-out URL names several stores: each is migrated and reported on its own.
  for (const url of config.store.url.split(',').map((part) => part.trim())) {
    const store = createStore(url, { retention: config.store.retention });
    try {
      const schema = store.schemaReport === undefined ? (await store.ready(), null) : await store.schemaReport();
      results.push({ store: redactUrl(url), kind: store.kind, schema });
    } finally {
      await store.close();
    }
  }
  return results;
}

export function formatMigrate(results: readonly MigrateResult[]): string {
  const lines: string[] = [];
  for (const result of results) {
    const schema = result.schema;
    if (schema === null) {
      lines.push(`${result.store}: ${result.kind} store ready (tables created in place; no versioned migrations)`);
      continue;
    }
    const state =
      schema.applied.length === 0
        ? `up to date at version ${schema.after}`
        : `version ${schema.before} → ${schema.after}, applied ${schema.applied.map((m) => `${m.version} ${m.name}`).join(', ')}`;
    lines.push(`${schema.location}: ${state}`);
    for (const note of schema.notes) lines.push(`  ${note}`);
  }
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('migrate')
    .description("Bring the store's schema to this build's version (versioned, idempotent; safe to repeat and to run beside a running gridpulse).")
    .option('-c, --config <file>', 'config file (default: ./gridpulse.yaml if present, else built-in defaults)')
    .option('--store <url>', 'store URL (default: the config\'s store); several separated by commas are migrated one by one')
    .option('--json', 'print the result as JSON')
    .action(async (opts: MigrateOptions) => {
      const results = await runMigrate(opts);
      process.stdout.write(opts.json ? `${JSON.stringify(results, null, 2)}\n` : formatMigrate(results));
    });
}
