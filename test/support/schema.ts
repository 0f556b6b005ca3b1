import { sql, type Kysely } from 'kysely';
import { dialectOf } from '../../src/platform/db/database.ts';

/** A migration history's own tables (legacy kysely_migration*, the modules' migrations_*), left out of what a schema is. */
export function isHistoryTable(table: string): boolean {
  return table.startsWith('kysely_migration') || table.startsWith('migrations_');
}

/** The tables of a database, without the migration histories, sorted. */
export async function tablesOf(db: Kysely<any>): Promise<string[]> {
  const tables = await db.introspection.getTables({ withInternalKyselyTables: true });
  return tables.map((table) => table.name).filter((name) => !isHistoryTable(name)).sort();
}

/** The text of every CHECK in a SQLite CREATE TABLE statement, wherever it stands, with its constraint name if it has one. */
function sqliteChecks(createTable: string): string[] {
  const checks: string[] = [];
  const pattern = /(constraint\s+"([^"]+)"\s+)?check\s*\(/gi;
  for (let match = pattern.exec(createTable); match; match = pattern.exec(createTable)) {
    let depth = 1;
    let end = pattern.lastIndex;
    while (depth > 0 && end < createTable.length) {
      if (createTable[end] === '(') depth += 1;
      if (createTable[end] === ')') depth -= 1;
      end += 1;
    }
    checks.push(`${match[2] ?? ''}: ${createTable.slice(pattern.lastIndex, end - 1)}`);
  }
  return checks.sort();
}

/**
 * A database's schema as the engine reports it: per table its columns in order (type, null,
 * default), its indexes and unique keys with their columns, and its CHECK constraints. Two
 * databases with equal descriptions take the same rows and refuse the same ones.
 */
export async function describeSchema(db: Kysely<any>): Promise<Record<string, unknown>> {
  const description: Record<string, unknown> = {};
  const dialect = dialectOf(db);
  for (const table of await tablesOf(db)) {
    if (dialect === 'sqlite') {
      const columns = (await sql`select name, type, "notnull", dflt_value, pk from pragma_table_xinfo(${table})`.execute(db)).rows;
      const indexes = [];
      for (const index of (await sql<{ name: string; unique: number; origin: string; partial: number }>`select name, "unique", origin, partial from pragma_index_list(${table}) order by name`.execute(db)).rows) {
        const on = (await sql<{ name: string }>`select name from pragma_index_info(${index.name}) order by seqno`.execute(db)).rows.map((column) => column.name);
        indexes.push({ ...index, on });
      }
      const created = (await sql<{ sql: string }>`select sql from sqlite_master where type = 'table' and name = ${table}`.execute(db)).rows[0]!.sql;
      description[table] = { columns, indexes, checks: sqliteChecks(created) };
    } else if (dialect === 'postgres') {
      const columns = (
        await sql`select column_name, data_type, character_maximum_length, is_nullable, column_default from information_schema.columns
                  where table_schema = 'public' and table_name = ${table} order by ordinal_position`.execute(db)
      ).rows;
      const indexes = (await sql`select indexname, indexdef from pg_indexes where schemaname = 'public' and tablename = ${table} order by indexname`.execute(db)).rows;
      const constraints = (
        await sql`select conname, contype, pg_get_constraintdef(oid) as definition from pg_constraint
                  where conrelid = ${`public.${table}`}::regclass order by conname`.execute(db)
      ).rows;
      description[table] = { columns, indexes, constraints };
    } else {
      // SHOW CREATE TABLE says it all, columns in order, keys and checks; the next AUTO_INCREMENT value is data, not schema.
      const row = (await sql.raw(`show create table \`${table}\``).execute(db)).rows[0] as Record<string, string>;
      description[table] = row['Create Table']!.replace(/ AUTO_INCREMENT=\d+/, '');
    }
  }
  return description;
}

/** Every row of every table but the histories, in a stable order: what "nothing lost" compares. */
export async function everyRow(db: Kysely<any>): Promise<Record<string, string[]>> {
  const rows: Record<string, string[]> = {};
  for (const table of await tablesOf(db)) {
    const all = await db.selectFrom(table).selectAll().execute();
    rows[table] = all.map((row) => JSON.stringify(row)).sort();
  }
  return rows;
}
