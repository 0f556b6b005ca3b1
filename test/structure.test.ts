import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { scanSource } from './support/source-scan.ts';
import { checkStructure, MAX_SOURCE_FILE_LINES, tablesNamedBy, type StructureReport } from './support/structure.ts';

/**
 * The module boundaries hold by structure, not by comment (issue 11): each module names only
 * its own tables (owners read from src/<module>/tables.ts), the imports run one way with no
 * cycle, platform imports no module, modules meet only at each other's index.ts, a face holds
 * no implementation, and no source file is over MAX_SOURCE_FILE_LINES. Pure file reading.
 * The second half runs the same check on small broken trees, so it provably fails when it should.
 */

const ROOT = join(import.meta.dirname, '..');

describe('the module boundaries of this tree', () => {
  const report = checkStructure(ROOT);

  it('reads every table owner from the modules\' tables.ts, one owner per table', () => {
    expect(report.problems.tableOwners).toEqual([]);
    expect(report.owners.size).toBeGreaterThan(0);
  });

  it('no module names another module\'s table; platform names none', () => {
    expect(report.owners.size, 'no table owners could be read, so nothing could be checked').toBeGreaterThan(0);
    expect(report.problems.foreignTables).toEqual([]);
  });

  it('the import graph has no cycle', () => {
    expect(report.problems.cycles).toEqual([]);
  });

  it('platform imports nothing outside src/platform/', () => {
    expect(report.problems.platformImports).toEqual([]);
  });

  it('a module imports another only through its index.ts', () => {
    expect(report.problems.facadeBypasses).toEqual([]);
  });

  it('a module\'s index.ts holds only re-exports and types', () => {
    expect(report.problems.facadeImplementations).toEqual([]);
  });

  it(`no source file is over ${MAX_SOURCE_FILE_LINES} lines`, () => {
    expect(report.problems.longFiles).toEqual([]);
  });

  it('reads the whole tree', () => {
    expect(report.files.length).toBeGreaterThan(100);
    expect(report.files).toContain('src/app.ts');
    expect(report.files.some((file) => file.endsWith('.test.ts'))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A tree of files in a fresh temporary folder, checked. */
function check(files: Record<string, string>): StructureReport {
  const root = mkdtempSync(join(tmpdir(), 'tuangou-structure-'));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return checkStructure(root);
}

const TABLES = {
  'src/orders/tables.ts': 'export interface OrdersTables {\n  orders: OrderRow;\n  order_lines: OrderLineRow;\n}\nexport interface OrderRow { order_no: string }\nexport interface OrderLineRow { line_no: number }\n',
  'src/jobs/tables.ts': 'export interface JobsTables {\n  jobs: JobRow;\n}\ninterface JobRow { id: number }\n',
  'src/events/tables.ts': 'export interface OutboxTables {\n  outbox_events: Row;\n}\nexport interface ConsumerTables {\n  event_inbox: Row;\n  dead_letters: Row;\n}\n',
  'src/inventory/tables.ts': 'export interface InventoryTables {\n  stock: StockRow;\n  stock_reservations: ReservationRow;\n}\n',
};

describe('the check itself, on small trees', () => {
  it('fails when no module has a tables.ts, since no owner can be read', () => {
    const report = check({ 'src/orders/index.ts': "export { x } from './x.ts';\n", 'src/orders/x.ts': "export const x = 'jobs';\n" });
    expect(report.owners.size).toBe(0);
    expect(report.problems.tableOwners).toEqual([expect.stringContaining('no src/<module>/tables.ts found')]);
  });

  it('reads owners from every *Tables interface of every module, and refuses a table with two owners', () => {
    const report = check({ ...TABLES, 'src/cart/tables.ts': 'export interface CartTables {\n  cart_lines: {\n    id: number;\n  };\n  orders: Row;\n}\n' });
    expect(Object.fromEntries(report.owners)).toEqual({
      orders: 'cart', order_lines: 'orders', jobs: 'jobs', outbox_events: 'events', event_inbox: 'events', dead_letters: 'events',
      stock: 'inventory', stock_reservations: 'inventory', cart_lines: 'cart',
    });
    expect(report.problems.tableOwners).toEqual(['table orders is declared by two modules: cart and orders']);
  });

  it('finds a foreign table named in Kysely calls, qualified names, aliases and SQL, and nowhere else', () => {
    const report = check({
      ...TABLES,
      'src/orders/lifecycle.ts': [
        "import { sql } from 'kysely';",
        "const quote = /'/g; // a regex holding a quote must not open a string",
        "export const mine = (trx: any) => trx.selectFrom('orders').select(['orders.order_no', 'order_lines.line_no']);",
        "export const cancel = (trx: any) => trx.deleteFrom('jobs').where('job_key', '=', 'x');",
        'export const held = (trx: any) => trx.selectFrom(\'stock_reservations as r\').selectAll();',
        'export const raw = sql`update jobs set due_at_ms = ${1} where id = ${2}`;',
        '// delete from jobs: a comment names nothing',
        "/* selectFrom('stock') */",
        "export const message = 'the order has no stock left'; // prose is not a table name",
        'export const field = { jobs: 1, stock: 2 }; // property names are not strings',
      ].join('\n'),
      'src/orders/migrations/0001_orders.ts': "export const up = (db: any) => db.schema.createTable('jobs');\n",
      'src/jobs/jobs.ts': "export const all = (db: any) => db.selectFrom('jobs');\n",
      'src/app.ts': "export const composed = ['jobs', 'stock'];\n",
      'src/tables.ts': "export type All = 'orders' | 'jobs';\n",
      'src/tools/demo/seed.ts': "export const seed = (db: any) => db.insertInto('stock');\n",
      'src/upgrade/from-legacy.ts': "export const read = (db: any) => db.selectFrom('orders');\n",
      'src/platform/metrics.ts': "export const depth = (db: any) => db.selectFrom('outbox_events').select('id');\nexport const table = (db: any, name: string) => db.selectFrom(name);\n",
      'src/cli.ts': 'export const count = `select count(*) from orders`;\n',
    });
    expect(report.problems.foreignTables).toEqual([
      'src/cli.ts:1: a file outside the modules names orders\'s table orders',
      "src/orders/lifecycle.ts:4: module orders names jobs's table jobs",
      "src/orders/lifecycle.ts:5: module orders names inventory's table stock_reservations",
      "src/orders/lifecycle.ts:6: module orders names jobs's table jobs",
      "src/platform/metrics.ts:1: platform names events's table outbox_events",
    ]);
  });

  it('finds a cycle through type imports and re-exports, shown as a closed path', () => {
    const report = check({
      ...TABLES,
      'src/platform/a.ts': "import type { B } from './b.ts';\nexport type A = B;\n",
      'src/platform/b.ts': "export * from './c.ts';\nexport type B = number;\n",
      'src/platform/c.ts': "import { a } from './a';\nexport const c = a;\n",
      'src/platform/d.ts': "import { c } from './c.ts';\nexport const d = c;\n",
      'src/platform/self.ts': "export { self } from './self.ts';\n",
    });
    expect(report.problems.cycles.sort()).toEqual([
      'import cycle through 1 file: src/platform/self.ts -> src/platform/self.ts',
      'import cycle through 3 files: src/platform/a.ts -> src/platform/b.ts -> src/platform/c.ts -> src/platform/a.ts',
    ]);
  });

  it('a tree that imports one way has no cycle', () => {
    const report = check({
      ...TABLES,
      'src/platform/a.ts': "import type { B } from './b.ts';\nexport type A = B;\n",
      'src/platform/b.ts': "// import { a } from './a.ts' (a comment is no import)\nexport type B = number;\nexport const text = \"import { a } from './a.ts'\".length;\n",
    });
    expect(report.problems.cycles).toEqual([]);
  });

  it('finds platform importing a module (or the composition), but not platform importing platform', () => {
    const report = check({
      ...TABLES,
      'src/platform/context.ts': "import type { StockLevel } from '../inventory/index.ts';\nimport { money } from './money.ts';\nexport type Context = StockLevel;\n",
      'src/platform/http/server.ts': "import { buildApp } from '../../app.ts';\nexport const server = buildApp;\n",
      'src/platform/money.ts': 'export const money = 1;\n',
      'src/inventory/index.ts': 'export type StockLevel = number;\n',
      'src/app.ts': 'export const buildApp = 1;\n',
    });
    expect(report.problems.platformImports).toEqual([
      'src/platform/context.ts imports src/inventory/index.ts: platform imports nothing outside src/platform/',
      'src/platform/http/server.ts imports src/app.ts: platform imports nothing outside src/platform/',
    ]);
  });

  it('finds a module reaching past another module\'s index.ts; its own files, platform and tools are free', () => {
    const report = check({
      ...TABLES,
      'src/orders/checkout.ts': [
        "import { appendEvent } from '../events/outbox.ts';",
        "import type { Claim } from '../inventory/flash-sale/index.ts';",
        "import { scheduleJob } from '../jobs/index.ts';",
        "import { price } from './price.ts';",
        "import { money } from '../platform/money.ts';",
        'export const checkout = [appendEvent, scheduleJob, price, money];',
        'export type C = Claim;',
      ].join('\n'),
      'src/tools/sandbox/core.ts': "import type { ChannelName } from '../../payments/channels/types.ts';\nexport type C = ChannelName;\n",
    });
    expect(report.problems.facadeBypasses).toEqual([
      'src/orders/checkout.ts imports src/events/outbox.ts: module orders reaches into events past src/events/index.ts',
      'src/orders/checkout.ts imports src/inventory/flash-sale/index.ts: module orders reaches into inventory past src/inventory/index.ts',
    ]);
  });

  it('finds implementation in a module\'s index.ts; re-exports and type-only declarations pass', () => {
    const face = [
      '/** The cart: lines, holds. */',
      "export { addToCart, type CartLine } from './cart.ts';",
      "export type { CartView } from './view.ts';",
      "export * from './limits.ts';",
      "export * as routes from './routes.ts';",
      'export {',
      '  removeCartLine,',
      '  changeCartLine,',
      "} from './lines.ts';",
      "import type { Db } from '../platform/db/database.ts';",
      'export type CartDb = Db;',
      'export type CartEvent =',
      "  | { kind: 'added'; line: { id: number } }",
      "  | { kind: 'removed' };",
      'export type Handler<T extends CartEvent> = (event: T) => Promise<void>',
      'export interface CartTables {',
      '  cart_lines: { id: number; nested: { deep: string } };',
      '}',
      'interface Local { a: number }',
    ].join('\n');
    const report = check({
      ...TABLES,
      'src/cart/index.ts': face,
      'src/orders/index.ts': [
        "import { sql } from 'kysely';",
        "export { place } from './place.ts';",
        'export const MAX_ORDER_LINES = 50;',
        'export async function cancel(db: unknown): Promise<void> {',
        '  await sql`select 1`.execute(db as never);',
        '}',
      ].join('\n'),
      'src/jobs/index.ts': "export enum Kind { A }\nexport class Runner {}\n",
      'src/orders/inner/index.ts': 'export const fine = 1; // not a module\'s face: only src/<module>/index.ts is\n',
    });
    expect(report.problems.facadeImplementations).toEqual([
      'src/jobs/index.ts holds implementation, not only re-exports and types (2 lines; 1: export enum Kind { A } | 2: export class Runner {})',
      "src/orders/index.ts holds implementation, not only re-exports and types (3 lines; 1: import { sql } from 'kysely'; | 3: export const MAX_ORDER_LINES = 50; | 4: export async function cancel(db: unknown): Promise<void> {)",
    ]);
  });

  it(`finds a file past MAX_SOURCE_FILE_LINES (${MAX_SOURCE_FILE_LINES}) lines, and not one at it`, () => {
    const lines = (count: number) => Array.from({ length: count }, (_, at) => `export const line${at} = ${at};`).join('\n') + '\n';
    const report = check({ ...TABLES, 'src/platform/at.ts': lines(MAX_SOURCE_FILE_LINES), 'src/platform/past.ts': lines(MAX_SOURCE_FILE_LINES + 1), 'src/platform/past.test.ts': lines(MAX_SOURCE_FILE_LINES + 1) });
    expect(report.problems.longFiles).toEqual([`src/platform/past.ts has ${MAX_SOURCE_FILE_LINES + 1} lines (at most ${MAX_SOURCE_FILE_LINES})`]);
  });
});

describe('naming a table', () => {
  const owners = new Map([['jobs', 'jobs'], ['stock_reservations', 'inventory'], ['orders', 'orders']]);
  const cases: Array<[string, string | undefined, string[]]> = [
    ['jobs', undefined, ['jobs']],
    ['stock_reservations as r', undefined, ['stock_reservations']],
    ['orders.status', undefined, ['orders']],
    ['jobs.*', undefined, ['jobs']],
    ['delete from jobs where job_key = ?', undefined, ['jobs']],
    ['update jobs set due_at_ms = ${…}', 'sql', ['jobs']],
    ['insert into `orders` (order_no) values (${…})', 'sql', ['orders']],
    ['select * from stock_reservations r join orders o on o.order_no = r.order_no', 'sql', ['stock_reservations', 'orders']],
    ['jobs', 'sql', []],
    ['job', undefined, []],
    ['order.paid', undefined, []],
    ['no jobs were due', undefined, []],
    ['jobs_total', undefined, []],
  ];
  it.each(cases)('%j (tag %s) names %j', (text, tag, named) => {
    expect(tablesNamedBy({ text, line: 1, tag }, owners)).toEqual(named);
  });

  it('the scanner tells strings, templates, regexes and comments apart', () => {
    const scan = scanSource([
      "const a = 'one'; // 'comment'",
      'const b = x / 2 / y; const r = /"[\'`]/g;',
      'const t = sql`from ${`inner ${"deep"}`} end`;',
      "/* 'block' */ import type { T } from './t.ts';",
    ].join('\n'));
    expect(scan.literals.map((literal) => [literal.text, literal.tag, literal.line])).toEqual([
      ['one', undefined, 1],
      ['deep', undefined, 3],
      ['inner ${…}', '', 3],
      ['from ${…} end', 'sql', 3],
      ['./t.ts', undefined, 4],
    ]);
    expect(scan.imports).toEqual(['./t.ts']);
  });
});
