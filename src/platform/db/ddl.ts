import { sql, type CreateTableBuilder, type Kysely, type RawBuilder } from 'kysely';
import { dialectOf } from './database.ts';

/** The engines' differences the modules' migrations need, said once. */

/** An auto-incrementing BIGINT primary key on each engine. */
export function withId(db: Kysely<any>, table: CreateTableBuilder<any, any>): CreateTableBuilder<any, any> {
  const dialect = dialectOf(db);
  if (dialect === 'postgres') return table.addColumn('id', 'bigserial', (column) => column.primaryKey());
  if (dialect === 'mysql') return table.addColumn('id', 'bigint', (column) => column.primaryKey().autoIncrement());
  return table.addColumn('id', 'integer', (column) => column.primaryKey().autoIncrement());
}

/** A key compared case-sensitively everywhere; MySQL's default collation would fold case. */
export function caseSensitiveKey(db: Kysely<any>, length: number): RawBuilder<unknown> {
  return dialectOf(db) === 'mysql' ? sql.raw(`varchar(${length}) character set ascii collate ascii_bin`) : sql.raw(`varchar(${length})`);
}
