import { affected, ignoreDuplicates, insertReturningId } from '../platform/db/sql.ts';
import { AppError, assert } from '../platform/errors.ts';
import { isPayeeChannel, MAX_SUB_MERCHANT_ID_LENGTH, PAYEE_CHANNELS, SUB_MERCHANT_ID_PATTERN, type PayeeChannel } from './payee-channels.ts';
import type { CatalogDb, CatalogTransaction } from './tables.ts';

/** Most merchants one payee question names: a checkout's merchants, or a page of the admin's listing. */
export const MAX_PAYEE_MERCHANTS = 200;
/** Most merchants the admin listing answers, oldest first. */
export const MAX_MERCHANTS_LISTED = MAX_PAYEE_MERCHANTS;

/** Who is paid for a merchant's goods: the platform itself (自营), or the merchant at its channel accounts. */
export interface MerchantPayee {
  selfOperated: boolean;
  /** The merchant's sub-merchant id per channel; a self-operated merchant needs none. */
  accounts: Partial<Record<PayeeChannel, string>>;
}

export interface Merchant extends MerchantPayee {
  id: number;
  name: string;
}

export async function createMerchant(db: CatalogDb, input: { name: string; selfOperated?: boolean }, now_ms: number): Promise<Merchant> {
  // self_operated is only written when set, so a merchant can still be created on a database
  // that has not run catalog 0002 yet (its default is 0).
  const values = { name: input.name, created_at_ms: now_ms, ...(input.selfOperated && { self_operated: 1 }) };
  const id = await insertReturningId(db, db.insertInto('merchants').values(values));
  return { id, name: input.name, selfOperated: input.selfOperated ?? false, accounts: {} };
}

export async function merchantExists(db: CatalogDb, id: number): Promise<boolean> {
  return (await db.selectFrom('merchants').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
}

/**
 * Who is paid for each merchant, in two queries whatever the number of merchants. A merchant
 * that does not exist has no entry.
 */
export async function merchantPayees(db: CatalogDb, merchantIds: readonly number[]): Promise<Map<number, MerchantPayee>> {
  const ids = [...new Set(merchantIds)];
  assert(ids.length <= MAX_PAYEE_MERCHANTS, () => `${ids.length} merchants asked for at once, at most MAX_PAYEE_MERCHANTS (${MAX_PAYEE_MERCHANTS})`);
  const payees = new Map<number, MerchantPayee>();
  if (ids.length === 0) return payees;
  const [merchants, accounts] = await Promise.all([
    db.selectFrom('merchants').select(['id', 'self_operated']).where('id', 'in', ids).execute(),
    db.selectFrom('merchant_channel_accounts').select(['merchant_id', 'channel', 'sub_merchant_id']).where('merchant_id', 'in', ids).orderBy('merchant_id').orderBy('channel').execute(),
  ]);
  for (const merchant of merchants) payees.set(Number(merchant.id), { selfOperated: Number(merchant.self_operated) === 1, accounts: {} });
  for (const account of accounts) {
    const payee = payees.get(Number(account.merchant_id));
    assert(payee !== undefined, () => `channel account of merchant ${account.merchant_id}, which does not exist`);
    payee.accounts[account.channel] = account.sub_merchant_id;
  }
  return payees;
}

/**
 * The merchants of `merchantIds` that cannot be paid through `channel`: a marketplace merchant
 * without a sub-merchant id there, or a merchant that does not exist. A self-operated merchant is
 * paid into the platform's own merchant number and can always be paid. Ascending, each once.
 */
export function merchantsWithoutAccount(payees: ReadonlyMap<number, MerchantPayee>, merchantIds: readonly number[], channel: PayeeChannel): number[] {
  const unpayable = [...new Set(merchantIds)].filter((merchantId) => {
    const payee = payees.get(merchantId);
    return payee === undefined || (!payee.selfOperated && payee.accounts[channel] === undefined);
  });
  return unpayable.sort((a, b) => a - b);
}

/** The channels of `channels` through which every merchant of `merchantIds` can be paid: what the cashier may offer. */
export function channelsPayingAll<Channel extends PayeeChannel>(payees: ReadonlyMap<number, MerchantPayee>, merchantIds: readonly number[], channels: readonly Channel[]): Channel[] {
  return channels.filter((channel) => merchantsWithoutAccount(payees, merchantIds, channel).length === 0);
}

/** merchantsWithoutAccount, read from the database. */
export async function merchantsUnpayableThrough(db: CatalogDb, merchantIds: readonly number[], channel: PayeeChannel): Promise<number[]> {
  return merchantsWithoutAccount(await merchantPayees(db, merchantIds), merchantIds, channel);
}

/** Refuses a channel that cannot pay every merchant of `merchantIds`, naming the merchants it cannot pay. */
export async function requirePayableThrough(db: CatalogDb, merchantIds: readonly number[], channel: PayeeChannel): Promise<void> {
  const unpayable = await merchantsUnpayableThrough(db, merchantIds, channel);
  if (unpayable.length > 0) throw new AppError('merchant_channel_account_missing', { details: { channel, merchantIds: unpayable } });
}

/** One merchant with who is paid for it, or 404 merchant_not_found. */
export async function getMerchant(db: CatalogDb, merchantId: number): Promise<Merchant> {
  const row = await db.selectFrom('merchants').select(['id', 'name']).where('id', '=', merchantId).executeTakeFirst();
  if (!row) throw new AppError('merchant_not_found', { message: `No merchant ${merchantId}.` });
  const payee = (await merchantPayees(db, [merchantId])).get(merchantId)!;
  return { id: merchantId, name: row.name, ...payee };
}

/** The first `limit` merchants by id, with who is paid for each. */
export async function listMerchants(db: CatalogDb, limit: number): Promise<Merchant[]> {
  assert(limit >= 1 && limit <= MAX_MERCHANTS_LISTED, () => `listing ${limit} merchants, at most MAX_MERCHANTS_LISTED (${MAX_MERCHANTS_LISTED})`);
  const rows = await db.selectFrom('merchants').select(['id', 'name']).orderBy('id').limit(limit).execute();
  const payees = await merchantPayees(db, rows.map((row) => Number(row.id)));
  return rows.map((row) => ({ id: Number(row.id), name: row.name, ...payees.get(Number(row.id))! }));
}

/** The channel named, or 400 invalid_field. */
export function parsePayeeChannel(value: string): PayeeChannel {
  if (!isPayeeChannel(value)) throw new AppError('invalid_field', { field: 'channel', message: `The channel must be one of ${PAYEE_CHANNELS.join(', ')}.` });
  return value;
}

/** A sub-merchant id as the channels issue them, or 400 invalid_field. */
export function checkSubMerchantId(value: string): string {
  if (value.length === 0 || value.length > MAX_SUB_MERCHANT_ID_LENGTH || !SUB_MERCHANT_ID_PATTERN.test(value)) {
    throw new AppError('invalid_field', {
      field: 'subMerchantId',
      message: `A sub-merchant id is 1 to MAX_SUB_MERCHANT_ID_LENGTH (${MAX_SUB_MERCHANT_ID_LENGTH}) printable ASCII characters without spaces.`,
    });
  }
  return value;
}

async function requireMerchant(trx: CatalogTransaction, merchantId: number): Promise<void> {
  if (!(await merchantExists(trx, merchantId))) throw new AppError('merchant_not_found', { message: `No merchant ${merchantId}.` });
}

/** Sets the merchant's sub-merchant id at a channel, replacing the one it had. */
export async function setMerchantChannelAccount(
  trx: CatalogTransaction,
  input: { merchantId: number; channel: string; subMerchantId: string },
  now_ms: number,
): Promise<Merchant> {
  const channel = parsePayeeChannel(input.channel);
  const subMerchantId = checkSubMerchantId(input.subMerchantId);
  await requireMerchant(trx, input.merchantId);
  const inserted = await trx
    .insertInto('merchant_channel_accounts')
    .values({ merchant_id: input.merchantId, channel, sub_merchant_id: subMerchantId, created_at_ms: now_ms, updated_at_ms: now_ms })
    .$call(ignoreDuplicates(trx))
    .executeTakeFirst();
  if (affected(inserted) === 0) {
    await trx
      .updateTable('merchant_channel_accounts')
      .set({ sub_merchant_id: subMerchantId, updated_at_ms: now_ms })
      .where('merchant_id', '=', input.merchantId)
      .where('channel', '=', channel)
      .execute();
  }
  return getMerchant(trx, input.merchantId);
}

/** Removes the merchant's sub-merchant id at a channel; removing one it does not have changes nothing. */
export async function removeMerchantChannelAccount(trx: CatalogTransaction, input: { merchantId: number; channel: string }): Promise<Merchant> {
  const channel = parsePayeeChannel(input.channel);
  await requireMerchant(trx, input.merchantId);
  await trx.deleteFrom('merchant_channel_accounts').where('merchant_id', '=', input.merchantId).where('channel', '=', channel).execute();
  return getMerchant(trx, input.merchantId);
}

/** Marks the merchant as the platform's own (自营) or as a marketplace merchant; its channel accounts stay as they are. */
export async function setMerchantSelfOperated(trx: CatalogTransaction, merchantId: number, selfOperated: boolean): Promise<Merchant> {
  await requireMerchant(trx, merchantId);
  await trx.updateTable('merchants').set({ self_operated: selfOperated ? 1 : 0 }).where('id', '=', merchantId).execute();
  return getMerchant(trx, merchantId);
}
