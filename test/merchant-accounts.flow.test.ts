import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  channelsPayingAll,
  createMerchant,
  MAX_PAYEE_MERCHANTS,
  MAX_SUB_MERCHANT_ID_LENGTH,
  merchantPayees,
  merchantsUnpayableThrough,
  merchantsWithoutAccount,
  PAYEE_CHANNELS,
  requirePayableThrough,
  setMerchantChannelAccount,
  setMerchantSelfOperated,
} from '../src/catalog/index.ts';
import { CHANNELS } from '../src/payments/index.ts';
import { transaction } from '../src/platform/db/retry.ts';
import { isAppError } from '../src/platform/errors.ts';
import { availableEngines } from './support/engines.ts';
import { startHarness, type Harness } from './support/harness.ts';
import { anonymous, asAdmin, asBuyer, withToken } from './support/client.ts';

/**
 * Merchants' identities at the payment channels (issue 12, item 5). Invariants: only an admin
 * sets, replaces or removes a merchant's sub-merchant id, one per merchant and channel; an id is
 * 1 to MAX_SUB_MERCHANT_ID_LENGTH printable ASCII characters, held by the code and by the
 * database's CHECKs; bad input and unknown merchants write nothing; and merchantPayees tells who
 * is paid for each merchant, so a marketplace merchant without an id at a channel is never paid
 * through it while the platform's own (自营) always can be.
 */
for (const engine of availableEngines()) {
  describe(`merchants' channel accounts on ${engine.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(engine);
    });
    afterAll(async () => h?.close());

    /** Every merchant and channel-account row, to show a refused request wrote nothing. */
    const everyAccountRow = async () => ({
      merchants: await h.app.db.selectFrom('merchants').selectAll().orderBy('id').execute(),
      accounts: await h.app.db.selectFrom('merchant_channel_accounts').selectAll().orderBy('merchant_id').orderBy('channel').execute(),
    });
    const newMerchant = async (body: { name: string; selfOperated?: boolean }) => {
      const created = await asAdmin(h).createMerchant(body);
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      return created.body.id as number;
    };

    it('names the same channels as the payments module', () => {
      expect([...PAYEE_CHANNELS].sort()).toEqual([...CHANNELS].sort());
    });

    it('an admin sets, replaces and removes a merchant\'s sub-merchant ids, and the listing shows them', async () => {
      const farm = await newMerchant({ name: 'Farm' });
      const own = await newMerchant({ name: '自营 Platform Select', selfOperated: true });
      const admin = asAdmin(h);
      expect((await admin.channelAccounts(farm)).body).toEqual({ id: farm, name: 'Farm', selfOperated: false, accounts: {} });

      const set = await admin.setChannelAccount(farm, 'wechat', '1900000109');
      expect([set.status, set.body.accounts]).toEqual([200, { wechat: '1900000109' }]);
      const replaced = await admin.setChannelAccount(farm, 'wechat', '1900000110');
      expect([replaced.status, replaced.body.accounts]).toEqual([200, { wechat: '1900000110' }]);
      await admin.setChannelAccount(farm, 'alipay', '2088000000000001');
      await admin.setChannelAccount(farm, 'ccb', '41060860800469061001');
      expect((await admin.channelAccounts(farm)).body.accounts).toEqual({ wechat: '1900000110', alipay: '2088000000000001', ccb: '41060860800469061001' });

      const removed = await admin.removeChannelAccount(farm, 'wechat');
      expect([removed.status, removed.body.accounts]).toEqual([200, { alipay: '2088000000000001', ccb: '41060860800469061001' }]);
      // Removing an id the merchant no longer has changes nothing.
      const before = await everyAccountRow();
      const again = await admin.removeChannelAccount(farm, 'wechat');
      expect([again.status, again.body.accounts]).toEqual([200, { alipay: '2088000000000001', ccb: '41060860800469061001' }]);
      expect(await everyAccountRow()).toEqual(before);
      const rows = await h.app.db.selectFrom('merchant_channel_accounts').select(['channel', 'sub_merchant_id']).where('merchant_id', '=', farm).orderBy('channel').execute();
      expect(rows).toEqual([{ channel: 'alipay', sub_merchant_id: '2088000000000001' }, { channel: 'ccb', sub_merchant_id: '41060860800469061001' }]);

      const listed = (await admin.merchants()).body.merchants as { id: number; selfOperated: boolean; accounts: object }[];
      expect(listed.find((merchant) => merchant.id === farm)).toEqual({ id: farm, name: 'Farm', selfOperated: false, accounts: { alipay: '2088000000000001', ccb: '41060860800469061001' } });
      expect(listed.find((merchant) => merchant.id === own)).toEqual({ id: own, name: '自营 Platform Select', selfOperated: true, accounts: {} });
    });

    it('two admins setting the same account at once leave one row, holding one of their ids', async () => {
      const merchantId = await newMerchant({ name: 'Raced' });
      const answers = await Promise.all(['1900000201', '1900000202'].map((id) => asAdmin(h).setChannelAccount(merchantId, 'wechat', id)));
      expect(answers.map((answer) => answer.status)).toEqual([200, 200]);
      const rows = await h.app.db.selectFrom('merchant_channel_accounts').select('sub_merchant_id').where('merchant_id', '=', merchantId).execute();
      expect(rows).toHaveLength(1);
      expect(['1900000201', '1900000202']).toContain(rows[0]!.sub_merchant_id);
    });

    it(`takes an id of MAX_SUB_MERCHANT_ID_LENGTH (${MAX_SUB_MERCHANT_ID_LENGTH}) printable ASCII characters, and refuses one longer or of other characters, writing nothing`, async () => {
      const merchantId = await newMerchant({ name: 'Limits' });
      const atLimit = 'M'.repeat(MAX_SUB_MERCHANT_ID_LENGTH - 1) + '~';
      const taken = await asAdmin(h).setChannelAccount(merchantId, 'unionpay', atLimit);
      expect([taken.status, taken.body.accounts]).toEqual([200, { unionpay: atLimit }]);
      const before = await everyAccountRow();
      for (const bad of ['M'.repeat(MAX_SUB_MERCHANT_ID_LENGTH + 1), '', '1900 000109', ' 1900000109', '商户号', '1900000109\n', 'é', 1900000109, null]) {
        const refused = await asAdmin(h).setChannelAccount(merchantId, 'unionpay', bad);
        expect([refused.status, refused.body.code, refused.body.field], JSON.stringify(bad)).toEqual([400, 'invalid_field', 'subMerchantId']);
      }
      const unknownChannel = await asAdmin(h).setChannelAccount(merchantId, 'paypal', '1900000109');
      expect([unknownChannel.status, unknownChannel.body.code, unknownChannel.body.field]).toEqual([400, 'invalid_field', 'params.channel']);
      expect(await everyAccountRow()).toEqual(before);

      // The functions hold the same rules for callers that are not the HTTP edge.
      const direct = async (channel: string, subMerchantId: string) => {
        try {
          await transaction(h.app.db, (trx) => setMerchantChannelAccount(trx, { merchantId, channel, subMerchantId }, h.clock.now()));
          return 'taken';
        } catch (error) {
          if (isAppError(error)) return `${error.code} ${error.field}`;
          throw error;
        }
      };
      expect(await direct('ccb', 'C'.repeat(MAX_SUB_MERCHANT_ID_LENGTH))).toBe('taken');
      expect(await direct('ccb', 'C'.repeat(MAX_SUB_MERCHANT_ID_LENGTH + 1))).toBe('invalid_field subMerchantId');
      expect(await direct('ccb', 'a b')).toBe('invalid_field subMerchantId');
      expect(await direct('paypal', '1900000109')).toBe('invalid_field channel');
      expect((await asAdmin(h).channelAccounts(merchantId)).body.accounts).toEqual({ unionpay: atLimit, ccb: 'C'.repeat(MAX_SUB_MERCHANT_ID_LENGTH) });
    });

    it('the database refuses an empty id, an unknown channel, a second account per channel and a self_operated other than 0 or 1', async () => {
      const merchantId = await newMerchant({ name: 'Constraints' });
      const now = h.clock.now();
      const insert = (channel: string, sub_merchant_id: string) =>
        h.app.db.insertInto('merchant_channel_accounts').values({ merchant_id: merchantId, channel: channel as 'wechat', sub_merchant_id, created_at_ms: now, updated_at_ms: now }).execute();
      await expect(insert('wechat', '')).rejects.toThrow();
      await expect(insert('paypal', '1900000109')).rejects.toThrow();
      await insert('wechat', '1900000109');
      await expect(insert('wechat', '1900000110')).rejects.toThrow();
      await expect(h.app.db.updateTable('merchants').set({ self_operated: 2 }).where('id', '=', merchantId).execute()).rejects.toThrow();
      expect((await asAdmin(h).channelAccounts(merchantId)).body).toMatchObject({ selfOperated: false, accounts: { wechat: '1900000109' } });
    });

    it('refuses everyone but an admin, writing nothing', async () => {
      const merchantId = await newMerchant({ name: 'Guarded' });
      await asAdmin(h).setChannelAccount(merchantId, 'wechat', '1900000109');
      const before = await everyAccountRow();
      const callers = [
        { who: 'anonymous', client: anonymous(h), status: 401 },
        { who: 'buyer', client: asBuyer(h, 91_001), status: 403 },
        { who: 'merchant', client: withToken(h, h.token({ role: 'merchant', subject: String(merchantId) })), status: 403 },
        { who: 'leader', client: withToken(h, h.token({ role: 'leader', subject: '1' })), status: 403 },
      ];
      for (const { who, client, status } of callers) {
        const answers = [
          await client.get(`/admin/merchants/${merchantId}/channel-accounts`),
          await client.get('/admin/merchants'),
          await client.put(`/admin/merchants/${merchantId}/channel-accounts/wechat`, { subMerchantId: '1900000999' }),
          await client.delete(`/admin/merchants/${merchantId}/channel-accounts/wechat`),
          await client.patch(`/admin/merchants/${merchantId}`, { selfOperated: true }),
          await client.post('/admin/merchants', { name: 'Sneaky' }),
        ];
        expect(answers.map((answer) => answer.status), who).toEqual(answers.map(() => status));
      }
      expect(await everyAccountRow()).toEqual(before);
    });

    it('answers 404 merchant_not_found for a merchant that does not exist, writing nothing', async () => {
      const before = await everyAccountRow();
      const missing = 987_654_321;
      const answers = [
        await asAdmin(h).channelAccounts(missing),
        await asAdmin(h).setChannelAccount(missing, 'wechat', '1900000109'),
        await asAdmin(h).removeChannelAccount(missing, 'wechat'),
        await asAdmin(h).updateMerchant(missing, { selfOperated: true }),
      ];
      expect(answers.map((answer) => [answer.status, answer.body.code])).toEqual(answers.map(() => [404, 'merchant_not_found']));
      expect(await everyAccountRow()).toEqual(before);
    });

    it('merchantPayees tells who is paid for each merchant, and which cannot be paid through a channel', async () => {
      const market = await newMerchant({ name: 'Market' });
      const bare = await newMerchant({ name: 'Bare' });
      const own = await newMerchant({ name: 'Own' });
      const admin = asAdmin(h);
      await admin.setChannelAccount(market, 'wechat', '1900000109');
      await admin.setChannelAccount(market, 'alipay', '2088000000000002');
      // Self-operated by a PATCH: paid into the platform's merchant number, whatever it holds.
      await admin.setChannelAccount(own, 'wechat', '1900000333');
      const patched = await admin.updateMerchant(own, { selfOperated: true });
      expect([patched.status, patched.body.selfOperated]).toEqual([200, true]);
      const missing = 987_654_322;

      const payees = await merchantPayees(h.app.db, [market, bare, own, missing, market]);
      expect(Object.fromEntries(payees)).toEqual({
        [market]: { selfOperated: false, accounts: { wechat: '1900000109', alipay: '2088000000000002' } },
        [bare]: { selfOperated: false, accounts: {} },
        [own]: { selfOperated: true, accounts: { wechat: '1900000333' } },
      });
      const ids = [own, bare, market, missing];
      expect(merchantsWithoutAccount(payees, ids, 'wechat')).toEqual([bare, missing].sort((a, b) => a - b));
      expect(await merchantsUnpayableThrough(h.app.db, [market, own], 'wechat')).toEqual([]);
      expect(await merchantsUnpayableThrough(h.app.db, [market, own], 'ccb')).toEqual([market]);
      expect(await merchantsUnpayableThrough(h.app.db, [own, own], 'unionpay')).toEqual([]);
      expect(channelsPayingAll(payees, [market, own], CHANNELS)).toEqual(['alipay', 'wechat']);
      expect(channelsPayingAll(payees, [own], CHANNELS)).toEqual([...CHANNELS]);
      expect(channelsPayingAll(payees, [market, bare], CHANNELS)).toEqual([]);

      const refusal = await requirePayableThrough(h.app.db, [market, own], 'ccb').catch((error: unknown) => error);
      expect(isAppError(refusal, 'merchant_channel_account_missing') && refusal.details).toEqual({ channel: 'ccb', merchantIds: [market] });
      await expect(requirePayableThrough(h.app.db, [market, own], 'alipay')).resolves.toBeUndefined();

      // Back to a marketplace merchant: now its own ids count.
      await transaction(h.app.db, (trx) => setMerchantSelfOperated(trx, own, false));
      expect(await merchantsUnpayableThrough(h.app.db, [own], 'wechat')).toEqual([]);
      expect(await merchantsUnpayableThrough(h.app.db, [own], 'alipay')).toEqual([own]);
    });

    it(`answers for at most MAX_PAYEE_MERCHANTS (${MAX_PAYEE_MERCHANTS}) merchants at once`, async () => {
      const merchant = await createMerchant(h.app.db, { name: 'Many' }, h.clock.now());
      const atLimit = Array.from({ length: MAX_PAYEE_MERCHANTS }, (_, i) => merchant.id + i);
      expect((await merchantPayees(h.app.db, atLimit)).get(merchant.id)).toEqual({ selfOperated: false, accounts: {} });
      await expect(merchantPayees(h.app.db, [...atLimit, merchant.id + MAX_PAYEE_MERCHANTS])).rejects.toThrow(/MAX_PAYEE_MERCHANTS/);
    });
  });
}
