import type { Kysely } from 'kysely';
import type { MainTables, ShardTables } from '../../src/tables.ts';

/** Tests look at every table: on the embedded default one database is both the main one and the only shard. */
export type TestDb = Kysely<MainTables & ShardTables>;
