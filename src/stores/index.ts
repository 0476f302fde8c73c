export * from './store.js';
export { createDuckDbStore, type DuckDbStoreOptions } from './duckdb-store.js';
export { createStore, SUPPORTED_STORE_URLS, type StoreOptions } from './registry.js';
export { createStoreWriter, type StoreWriter, type StoreWriterOptions, type StoreWriteKind } from './store-writer.js';
export { readingRowId, OPS_KINDS } from './row-identity.js';
export { createPostgresStore, type PostgresStoreOptions } from './postgres-store.js';
export { POSTGRES_MIGRATIONS, POSTGRES_SCHEMA_VERSION, type Migration, type Partitioning } from './postgres-schema.js';
export { createRedisFeatureCache, DEFAULT_FEATURE_PREFIXES, type RedisFeatureCache, type RedisFeatureCacheOptions, type LiveFeatureSnapshot, type FeatureCacheStats, type FeatureWriteResult } from './redis-features.js';
