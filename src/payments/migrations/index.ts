import type { Migration } from 'kysely';
import * as paymentOrders from './0001_payment_orders.ts';
import * as combinedPayments from './0002_combined_payments.ts';
import * as reconciliation from './0001_reconciliation.ts';

/**
 * The payment centre's migrations, in two histories because its tables live on two kinds of
 * database: payments and refunds on every order shard (migrations_payments_shard), the
 * reconciliation results on the main database (migrations_payments_main). Add a file and a line
 * to the side it belongs to; never edit a landed one.
 */
export const paymentsShardMigrations: Record<string, Migration> = {
  '0001_payment_orders': paymentOrders,
  '0002_combined_payments': combinedPayments,
};

export const paymentsMainMigrations: Record<string, Migration> = {
  '0001_reconciliation': reconciliation,
};
