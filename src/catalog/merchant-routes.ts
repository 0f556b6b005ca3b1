import { z } from 'zod';
import { transaction } from '../platform/db/retry.ts';
import { authorize } from '../platform/http/auth.ts';
import { pathId } from '../platform/http/inputs.ts';
import type { RouteModule } from '../platform/http/server.ts';
import {
  createMerchant,
  getMerchant,
  listMerchants,
  MAX_MERCHANTS_LISTED,
  MAX_SUB_MERCHANT_ID_LENGTH,
  PAYEE_CHANNELS,
  removeMerchantChannelAccount,
  setMerchantChannelAccount,
  setMerchantSelfOperated,
  SUB_MERCHANT_ID_PATTERN,
} from './index.ts';
import type { CatalogDb } from './tables.ts';

/** What the merchant routes use of the app. */
export interface MerchantRouteDeps {
  db: CatalogDb;
  now: () => number;
}

const merchantParams = z.object({ merchantId: pathId });
const accountParams = z.object({ merchantId: pathId, channel: z.enum(PAYEE_CHANNELS) });
const subMerchantId = z
  .string()
  .min(1)
  .max(MAX_SUB_MERCHANT_ID_LENGTH)
  .regex(SUB_MERCHANT_ID_PATTERN, 'printable ASCII without spaces')
  .describe('WeChat sub_mchid, Alipay smid, or the custody bank\'s merchant number (UnionPay merId, CCB 惠市宝 Mkt_Mrch_Id)');

/**
 * Merchants and who is paid for their goods (issue 12, item 5): the platform's own merchant (自营)
 * is paid into the platform's merchant number; a marketplace merchant at its sub-merchant id per
 * channel, which admins set here. A merchant without one at a channel cannot be paid through it.
 */
export const merchantRoutes: RouteModule<MerchantRouteDeps> = (server, app) => {
  server.post(
    '/admin/merchants',
    { schema: { summary: 'Create a merchant; selfOperated marks the platform\'s own (自营)', tags: ['admin'], body: z.object({ name: z.string().trim().min(1).max(200), selfOperated: z.boolean().optional() }).strict() } },
    async (request, reply) => {
      authorize(request, 'admin');
      return reply.status(201).send(await createMerchant(app.db, request.body, app.now()));
    },
  );

  server.get('/admin/merchants', { schema: { summary: `Merchants with their channel accounts, oldest first (at most ${MAX_MERCHANTS_LISTED})`, tags: ['admin'] } }, async (request) => {
    authorize(request, 'admin');
    return { merchants: await listMerchants(app.db, MAX_MERCHANTS_LISTED) };
  });

  server.patch(
    '/admin/merchants/:merchantId',
    { schema: { summary: 'Mark a merchant as the platform\'s own (自营) or as a marketplace merchant', tags: ['admin'], params: merchantParams, body: z.object({ selfOperated: z.boolean() }).strict() } },
    async (request) => {
      authorize(request, 'admin');
      return transaction(app.db, (trx) => setMerchantSelfOperated(trx, request.params.merchantId, request.body.selfOperated));
    },
  );

  server.get(
    '/admin/merchants/:merchantId/channel-accounts',
    { schema: { summary: "A merchant's sub-merchant ids per payment channel", tags: ['admin'], params: merchantParams } },
    async (request) => {
      authorize(request, 'admin');
      return getMerchant(app.db, request.params.merchantId);
    },
  );

  server.put(
    '/admin/merchants/:merchantId/channel-accounts/:channel',
    { schema: { summary: "Set or replace a merchant's sub-merchant id at a payment channel", tags: ['admin'], params: accountParams, body: z.object({ subMerchantId }).strict() } },
    async (request) => {
      authorize(request, 'admin');
      const input = { merchantId: request.params.merchantId, channel: request.params.channel, subMerchantId: request.body.subMerchantId };
      return transaction(app.db, (trx) => setMerchantChannelAccount(trx, input, app.now()));
    },
  );

  server.delete(
    '/admin/merchants/:merchantId/channel-accounts/:channel',
    { schema: { summary: "Remove a merchant's sub-merchant id at a payment channel (it can no longer be paid through it); removing one it has not is harmless", tags: ['admin'], params: accountParams } },
    async (request) => {
      authorize(request, 'admin');
      return transaction(app.db, (trx) => removeMerchantChannelAccount(trx, request.params));
    },
  );
};
