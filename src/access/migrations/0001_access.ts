import { sql, type Kysely } from 'kysely';

/**
 * The denylist of bearer tokens, on the main database: a revoked token's id until the token
 * would have expired anyway, when the row can go. As legacy migration 0013 made it.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('revoked_tokens')
    .addColumn('token_id', 'varchar(32)', (column) => column.primaryKey())
    .addColumn('expires_at_ms', 'bigint', (column) => column.notNull())
    .addColumn('revoked_at_ms', 'bigint', (column) => column.notNull())
    .addColumn('reason', 'varchar(200)', (column) => column.notNull())
    .addCheckConstraint('revoked_tokens_times', sql`expires_at_ms > 0 and revoked_at_ms > 0`)
    .execute();
  await db.schema.createIndex('revoked_tokens_expiry').on('revoked_tokens').column('expires_at_ms').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('revoked_tokens').ifExists().execute();
}
