import { createBuyer, listBuyers, type Buyer } from '../../buyers/index.ts';
import { createMerchant, createProduct, insertActivity, setMerchantChannelAccount, type PayeeChannel } from '../../catalog/index.ts';
import { createStock } from '../../inventory/index.ts';
import { createLeader, listLeaders, type Leader } from '../../leaders/index.ts';
import type { MainDb } from '../../tables.ts';
import { transaction } from '../../platform/db/retry.ts';
import { createCouponTemplate, issueCoupons } from '../../coupons/index.ts';
import { grantPoints } from '../../points/index.ts';
import { createPromotion } from '../../promotions/index.ts';

const DAY_MS = 24 * 3600 * 1000;

/**
 * The marketplace merchants' sub-merchant ids, in each channel's format: a WeChat sub_mchid (ten
 * digits), an Alipay smid (2088 and twelve digits), a UnionPay merId (fifteen digits) and a CCB
 * 惠市宝 Mkt_Mrch_Id (the custody bank's merchant number).
 */
const DEMO_ACCOUNTS: Record<'farm' | 'dairy', Record<PayeeChannel, string>> = {
  farm: { wechat: '1900000109', alipay: '2088102170208460', unionpay: '777290058110048', ccb: '41060860800469061001' },
  dairy: { wechat: '1900000110', alipay: '2088102170208461', unionpay: '777290058110049', ccb: '41060860800469061002' },
};

export interface DemoData {
  created: boolean;
  buyers: Buyer[];
  leaders: Leader[];
}

/**
 * Demo data for a new user: two marketplace merchants with sub-merchant ids at every channel the
 * sandbox plays, the platform's own self-operated merchant (自营), three leaders, four buyers, two open group-buy
 * activities, two promotions, a coupon for every buyer and 1,000 welcome points each.
 * Does nothing when the catalog already has merchants.
 */
export async function seedDemoData(db: MainDb, now_ms: number): Promise<DemoData> {
  const existing = await db.selectFrom('merchants').select('id').limit(1).execute();
  if (existing.length > 0) return { created: false, buyers: await listBuyers(db, 10), leaders: await listLeaders(db, 10) };

  const farm = await createMerchant(db, { name: '绿源农场 Green Spring Farm' }, now_ms);
  const dairy = await createMerchant(db, { name: '晨光乳业 Morning Light Dairy' }, now_ms);
  // 自营: paid into the platform's own merchant number, so it needs no channel accounts.
  const select = await createMerchant(db, { name: '团团优选 Tuantuan Select (自营)', selfOperated: true }, now_ms);
  await transaction(db, async (trx) => {
    for (const [merchantId, accounts] of [[farm.id, DEMO_ACCOUNTS.farm], [dairy.id, DEMO_ACCOUNTS.dairy]] as const) {
      for (const [channel, subMerchantId] of Object.entries(accounts)) await setMerchantChannelAccount(trx, { merchantId, channel, subMerchantId }, now_ms);
    }
  });
  const leaders = [
    await createLeader(db, { name: '王阿姨 Auntie Wang', community: '阳光花园 Sunshine Garden', address: '3号楼 1单元 便利店' }, now_ms),
    await createLeader(db, { name: '李师傅 Master Li', community: '翠湖苑 Green Lake Court', address: '南门 快递柜旁' }, now_ms),
    await createLeader(db, { name: '陈姐 Sister Chen', community: '锦绣城 Jinxiu City', address: '12栋 底商 水果店' }, now_ms),
  ];
  const buyers: Buyer[] = [];
  for (const name of ['张三 Zhang San', '李四 Li Si', '王五 Wang Wu', '赵六 Zhao Liu']) buyers.push(await createBuyer(db, { name }, now_ms));

  const strawberries = await createProduct(db, {
    merchantId: farm.id, title: '丹东草莓 Dandong strawberries', category: 'fruit',
    skus: [{ title: '500g', listPrice_fen: 3990, weight_g: 550 }, { title: '1kg', listPrice_fen: 6990, weight_g: 1080 }],
  }, now_ms);
  const eggs = await createProduct(db, {
    merchantId: farm.id, title: '散养土鸡蛋 Free-range eggs', category: 'eggs',
    skus: [{ title: '30枚 30 pcs', listPrice_fen: 4500, weight_g: 1800 }],
  }, now_ms);
  const rice = await createProduct(db, {
    merchantId: select.id, title: '五常大米 Wuchang rice', category: 'grain',
    skus: [{ title: '5kg', listPrice_fen: 8900, weight_g: 5100 }],
  }, now_ms);
  const milk = await createProduct(db, {
    merchantId: dairy.id, title: '鲜牛奶 Fresh milk', category: 'dairy',
    skus: [{ title: '950ml', listPrice_fen: 1590, weight_g: 1000 }],
  }, now_ms);

  const tomorrow = new Date(now_ms + DAY_MS).toISOString().slice(0, 10);
  await transaction(db, async (trx) => {
    const fruit = await insertActivity(trx, {
      title: '今日鲜果团 Fresh fruit today', starts_at_ms: now_ms - 3600_000, ends_at_ms: now_ms + 2 * DAY_MS,
      order_cutoff_at_ms: now_ms + DAY_MS, pickupDate: tomorrow, inventoryMode: 'on_order',
    }, [
      { skuId: strawberries.skus[0]!.id, price_fen: 2990, purchaseLimit: 5 },
      { skuId: strawberries.skus[1]!.id, price_fen: 5490, purchaseLimit: 3 },
    ], now_ms);
    await createStock(trx, fruit.skus[0]!.id, 500, now_ms);
    await createStock(trx, fruit.skus[1]!.id, 200, now_ms);

    const breakfast = await insertActivity(trx, {
      title: '早餐团 Breakfast box', starts_at_ms: now_ms - 3600_000, ends_at_ms: now_ms + 7 * DAY_MS,
      order_cutoff_at_ms: now_ms + 6 * DAY_MS, pickupDate: new Date(now_ms + 7 * DAY_MS).toISOString().slice(0, 10), inventoryMode: 'on_order',
    }, [
      { skuId: eggs.skus[0]!.id, price_fen: 3290, purchaseLimit: null },
      { skuId: milk.skus[0]!.id, price_fen: 1190, purchaseLimit: 10 },
      { skuId: rice.skus[0]!.id, price_fen: 6990, purchaseLimit: 2 },
    ], now_ms);
    await createStock(trx, breakfast.skus[0]!.id, 300, now_ms);
    await createStock(trx, breakfast.skus[1]!.id, 1000, now_ms);
    await createStock(trx, breakfast.skus[2]!.id, 200, now_ms);
  });

  const week = { startsAt: new Date(now_ms - 3600_000).toISOString(), endsAt: new Date(now_ms + 7 * DAY_MS).toISOString() };
  await createPromotion(db, { name: '满50减5 5 off every 50', scope: { kind: 'platform' }, rule: { kind: 'amount_off', threshold_fen: 5000, off_fen: 500, repeat: true, cap_fen: 2000 }, priority: 1, stacking: 'stackable', enabled: true, ...week }, now_ms);
  await createPromotion(db, { name: '鲜奶第二件半价 second milk half price', scope: { kind: 'sku', skuIds: [milk.skus[0]!.id] }, rule: { kind: 'nth_unit', n: 2, discount_bp: 5000 }, priority: 2, stacking: 'stackable', enabled: true, ...week }, now_ms);
  const coupon = await createCouponTemplate(db, { name: '新人券 3 yuan off 30', scope: { kind: 'platform' }, rule: { kind: 'fixed', off_fen: 300, threshold_fen: 3000 }, validFrom: week.startsAt, validUntil: new Date(now_ms + 30 * DAY_MS).toISOString(), perBuyerLimit: 1 }, now_ms);
  await issueCoupons(db, coupon.id, buyers.map((b) => b.id), now_ms);
  for (const buyer of buyers) await grantPoints(db, buyer.id, 1000, `demo-welcome-${buyer.id}`, 'welcome points', now_ms);
  return { created: true, buyers, leaders };
}
