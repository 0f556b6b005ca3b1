import type { ConsistencyDb } from './tables.ts';
import type { CheckName } from './check.ts';

/** Most repairs one page of the admin list returns. */
export const MAX_REPAIRS_LISTED = 200;

export interface Repair {
  id: number;
  check: string;
  key: string;
  action: string;
  detail: string | null;
  repaired_at_ms: number;
}

const MAX_DETAIL_LENGTH = 500;

/** One row per repair, on the main database: what the reconciler found and did, for people to read. */
export async function recordRepair(db: ConsistencyDb, repair: { check: CheckName; key: string; action: string; detail?: string | undefined }, now_ms: number): Promise<void> {
  await db
    .insertInto('consistency_repairs')
    .values({ check_name: repair.check, item_key: repair.key, action: repair.action, detail: repair.detail?.slice(0, MAX_DETAIL_LENGTH) ?? null, repaired_at_ms: now_ms })
    .execute();
}

/** Newest first; `beforeId` pages on. */
export async function recentRepairs(db: ConsistencyDb, query: { limit: number; check?: string | undefined; beforeId?: number | undefined }): Promise<Repair[]> {
  let select = db.selectFrom('consistency_repairs').selectAll().orderBy('id', 'desc').limit(Math.min(query.limit, MAX_REPAIRS_LISTED));
  if (query.check) select = select.where('check_name', '=', query.check);
  if (query.beforeId !== undefined) select = select.where('id', '<', query.beforeId);
  const rows = await select.execute();
  return rows.map((r) => ({ id: Number(r.id), check: r.check_name, key: r.item_key, action: r.action, detail: r.detail, repaired_at_ms: Number(r.repaired_at_ms) }));
}
