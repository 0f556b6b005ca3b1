import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { scanSource, type Literal, type ScannedSource } from './source-scan.ts';

/**
 * The module boundaries of issue 11, read from the files themselves (no compiler, no build):
 * which module owns which table (each `src/<module>/tables.ts`), who imports whom, and how long
 * every file is. checkStructure(root) answers a list of problems per rule; test/structure.test.ts
 * asserts each list is empty on the real tree and not empty on small broken fixtures.
 */

/** Longest source file, in lines (STYLE.md, convention 11). */
export const MAX_SOURCE_FILE_LINES = 400;

/** Folders directly under src/ that are not domain modules. */
const PLATFORM = 'platform';
const NOT_MODULES = new Set([PLATFORM, 'tools', 'upgrade']);
/** Files directly under src/ that compose the modules and may name any table. */
const COMPOSITION_FILES = new Set(['src/app.ts', 'src/tables.ts', 'src/migrations.ts']);

export interface StructureReport {
  /** table → owning module, from the tables.ts files. */
  owners: Map<string, string>;
  files: string[];
  problems: {
    tableOwners: string[];
    foreignTables: string[];
    cycles: string[];
    platformImports: string[];
    facadeBypasses: string[];
    facadeImplementations: string[];
    longFiles: string[];
  };
}

export function checkStructure(root: string): StructureReport {
  const files = sourceFiles(root);
  const texts = new Map(files.map((file) => [file, readFileSync(join(root, file), 'utf8')]));
  const scanned = new Map([...texts].map(([file, text]) => [file, scanSource(text)]));
  const { owners, problems: tableOwners } = readTableOwners(root, files, texts);
  const graph = new Map([...scanned].map(([file, scan]) => [file, scan.imports.map((specifier) => resolveImport(root, file, specifier))]));
  const unique = (problems: string[]) => [...new Set(problems)];
  return {
    owners,
    files,
    problems: {
      tableOwners,
      foreignTables: unique(owners.size === 0 ? [] : findForeignTables(scanned, owners)),
      cycles: findCycles(graph),
      platformImports: unique(findPlatformImports(graph)),
      facadeBypasses: unique(findFacadeBypasses(graph)),
      facadeImplementations: findFacadeImplementations(texts, scanned),
      longFiles: [...texts].flatMap(([file, text]) => {
        const lines = lineCount(text);
        return lines > MAX_SOURCE_FILE_LINES ? [`${file} has ${lines} lines (at most ${MAX_SOURCE_FILE_LINES})`] : [];
      }),
    },
  };
}

/** Every non-test .ts file under src/, as a path relative to root with forward slashes. */
function sourceFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(join(root, folder), { withFileTypes: true })) {
      const path = `${folder}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts')) found.push(path);
    }
  };
  if (existsSync(join(root, 'src'))) walk('src');
  return found.sort();
}

function lineCount(text: string): number {
  const newlines = text.split('\n').length - 1;
  return text.endsWith('\n') || text.length === 0 ? newlines : newlines + 1;
}

/** The folder under src/ a file belongs to ('' for the files directly in src/). */
function folderOf(file: string): string {
  const parts = file.split('/');
  return parts.length > 2 ? parts[1]! : '';
}

function moduleOf(file: string): string | undefined {
  const folder = folderOf(file);
  return folder !== '' && !NOT_MODULES.has(folder) ? folder : undefined;
}

/** Migrations name tables by nature: a module's own (src/<module>/migrations/) and the frozen legacy ones. */
function isMigration(file: string): boolean {
  return file.split('/').slice(0, -1).some((folder) => /migrations$/.test(folder));
}

/** The file an import names, relative to root, or the normalised path when no such file exists. */
function resolveImport(root: string, from: string, specifier: string): string {
  const target = normalize(join(dirname(from), specifier)).split(sep).join('/');
  const candidates = [target, target.replace(/\.js$/, '.ts'), `${target}.ts`, `${target}/index.ts`];
  for (const candidate of candidates) {
    const full = join(root, candidate);
    if (existsSync(full) && statSync(full).isFile()) return candidate;
  }
  return target;
}

// ---------------------------------------------------------------------------------------------
// (a) Tables: owners from tables.ts, and who names them.

function readTableOwners(root: string, files: string[], texts: Map<string, string>): { owners: Map<string, string>; problems: string[] } {
  const owners = new Map<string, string>();
  const problems: string[] = [];
  const tableFiles = files.filter((file) => /^src\/[^/]+\/tables\.ts$/.test(file) && moduleOf(file) !== undefined);
  if (tableFiles.length === 0) {
    problems.push(`no src/<module>/tables.ts found under ${relative(process.cwd(), root) || '.'}: the owner of each table cannot be read`);
  }
  for (const file of tableFiles) {
    const module = moduleOf(file)!;
    const code = scanSource(texts.get(file)!).code;
    let interfaces = 0;
    for (const match of code.matchAll(/export\s+interface\s+(\w*Tables)\s*(?:extends[^{]*)?\{/g)) {
      interfaces++;
      let body = bracedBody(code, match.index! + match[0].length);
      // Only the interface's own members are tables; an inline row type's fields are not.
      for (let previous = ''; previous !== body; ) [previous, body] = [body, body.replace(/\{[^{}]*\}/g, '')];
      for (const column of body.matchAll(/^\s*['"]?([a-z_][a-z0-9_]*)['"]?\??\s*:/gm)) {
        const table = column[1]!;
        const owner = owners.get(table);
        if (owner && owner !== module) problems.push(`table ${table} is declared by two modules: ${owner} and ${module}`);
        else owners.set(table, module);
      }
    }
    if (interfaces === 0) problems.push(`${file} declares no \`export interface <X>Tables { table_name: Row; … }\``);
  }
  return { owners, problems };
}

/** The text between an opening brace (just before start) and its closing brace. */
function bracedBody(code: string, start: number): string {
  let depth = 1;
  for (let at = start; at < code.length; at++) {
    if (code[at] === '{') depth++;
    if (code[at] === '}' && --depth === 0) return code.slice(start, at);
  }
  return code.slice(start);
}

/** A quoted name as Kysely takes it: 'stock', 'stock_reservations as r', 'orders.status', 'jobs.*'. */
const QUOTED_TABLE = /^\s*([a-z_][a-z0-9_]*)(?:\.(?:[a-z_][a-z0-9_]*|\*))?(?:\s+as\s+\w+)?\s*$/i;
/** A table after a SQL keyword: from jobs, update jobs, into jobs, join jobs, table jobs. */
const SQL_TABLE = /\b(?:from|update|into|join|table)\s+[`"]?([a-z_][a-z0-9_]*)/gi;

/** Tables a literal names. */
export function tablesNamedBy(literal: Literal, tables: ReadonlyMap<string, string>): string[] {
  const named = new Set<string>();
  if (literal.tag === undefined) {
    const quoted = QUOTED_TABLE.exec(literal.text);
    if (quoted && tables.has(quoted[1]!)) named.add(quoted[1]!);
  }
  for (const match of literal.text.matchAll(SQL_TABLE)) if (tables.has(match[1]!)) named.add(match[1]!);
  return [...named];
}

function findForeignTables(scanned: Map<string, ScannedSource>, owners: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const [file, scan] of scanned) {
    if (COMPOSITION_FILES.has(file) || isMigration(file)) continue;
    const folder = folderOf(file);
    if (folder === 'tools' || folder === 'upgrade') continue;
    // A module names its own tables; platform and the other files directly in src/ own none.
    const own = moduleOf(file);
    for (const literal of scan.literals) {
      for (const table of tablesNamedBy(literal, owners)) {
        const owner = owners.get(table)!;
        if (owner === own) continue;
        const who = own ? `module ${own}` : folder === PLATFORM ? 'platform' : 'a file outside the modules';
        problems.push(`${file}:${literal.line}: ${who} names ${owner}'s table ${table}`);
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// (b)–(d) The import graph.

/** Every cycle of the graph, one per strongly connected component (Tarjan), shown as one closed path. */
export function findCycles(graph: Map<string, string[]>): string[] {
  let counter = 0;
  const order = new Map<string, number>();
  const lowest = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (file: string) => {
    order.set(file, counter);
    lowest.set(file, counter);
    counter++;
    stack.push(file);
    onStack.add(file);
    for (const target of graph.get(file) ?? []) {
      if (!graph.has(target)) continue;
      if (!order.has(target)) {
        visit(target);
        lowest.set(file, Math.min(lowest.get(file)!, lowest.get(target)!));
      } else if (onStack.has(target)) lowest.set(file, Math.min(lowest.get(file)!, order.get(target)!));
    }
    if (lowest.get(file) === order.get(file)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      const selfImport = (graph.get(file) ?? []).includes(file);
      if (component.length > 1 || selfImport) components.push(component);
    }
  };
  for (const file of graph.keys()) if (!order.has(file)) visit(file);
  return components.map((component) => {
    const path = shortestCycle(graph, component);
    const others = component.filter((file) => !path.includes(file)).sort();
    const rest = others.length ? `; also in this knot: ${others.join(', ')}` : '';
    return `import cycle through ${component.length} file${component.length === 1 ? '' : 's'}: ${path.join(' -> ')}${rest}`;
  });
}

/** The shortest closed path from the component's first file (alphabetically) back to itself. */
function shortestCycle(graph: Map<string, string[]>, component: string[]): string[] {
  const members = new Set(component);
  const start = [...component].sort()[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const file = queue[head]!;
    for (const target of graph.get(file) ?? []) {
      if (!members.has(target)) continue;
      if (target === start) {
        const path = [start];
        for (let at: string | undefined = file; at !== undefined && at !== start; at = previous.get(at)) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!previous.has(target)) {
        previous.set(target, file);
        queue.push(target);
      }
    }
  }
  return [...component, component[0]!];
}

function findPlatformImports(graph: Map<string, string[]>): string[] {
  const problems: string[] = [];
  for (const [file, targets] of graph) {
    if (folderOf(file) !== PLATFORM) continue;
    for (const target of targets) if (!target.startsWith(`src/${PLATFORM}/`)) problems.push(`${file} imports ${target}: platform imports nothing outside src/platform/`);
  }
  return problems;
}

function findFacadeBypasses(graph: Map<string, string[]>): string[] {
  const problems: string[] = [];
  for (const [file, targets] of graph) {
    const importer = moduleOf(file);
    if (!importer) continue;
    for (const target of targets) {
      const imported = target.startsWith('src/') ? moduleOf(target) : undefined;
      if (imported && imported !== importer && target !== `src/${imported}/index.ts`) {
        problems.push(`${file} imports ${target}: module ${importer} reaches into ${imported} past src/${imported}/index.ts`);
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// (e) A module's index.ts is its face: re-exports and type-only declarations, nothing else.

/**
 * Allowed at the top of a module's index.ts: `export … from '…'` (types or values),
 * `import type … from '…'` (for the types declared here), `export type X = …` and
 * `export interface X {…}` (exported or not). Anything else — a function, a const, a class, an
 * enum, a value import, a statement — is implementation.
 */
function findFacadeImplementations(texts: Map<string, string>, scanned: Map<string, ScannedSource>): string[] {
  const problems: string[] = [];
  for (const [file] of texts) {
    const module = moduleOf(file);
    if (!module || file !== `src/${module}/index.ts`) continue;
    const lines = texts.get(file)!.split('\n');
    // Lines that only close a bracket say nothing a reader needs.
    const found = implementationIn(scanned.get(file)!.masked).filter((line) => !/^[\s)\]}>;:,]*$/.test(lines[line - 1]!) && !/^[)\]}]/.test(lines[line - 1]!.trim()));
    if (found.length === 0) continue;
    const shown = found.slice(0, 3).map((line) => `${line}: ${lines[line - 1]!.trim().slice(0, 70)}`);
    problems.push(`${file} holds implementation, not only re-exports and types (${found.length} line${found.length === 1 ? '' : 's'}; ${shown.join(' | ')}${found.length > 3 ? ' | …' : ''})`);
  }
  return problems;
}

const STATEMENT_START = String.raw`(?=\n\s*(?:export|import|type|interface|declare|function|async|const|let|var|class|enum|namespace|abstract)\b|$)`;
const FACADE_CONSTRUCTS = [
  /\bexport\s+(?:type\s+)?(?:\{\s*\}|\*(?:\s+as\s+[\w$]+)?)\s*from\s*(['"])\s*\1\s*;?/g,
  /\bimport\s+type\s+(?:\{\s*\}|[\w$]+|\*\s+as\s+[\w$]+)\s*from\s*(['"])\s*\1\s*;?/g,
  /(?:\bexport\s+)?\binterface\s+[\w$]+\s*(?:<[^>{]*>)?\s*(?:extends\s+[^{]*)?\{\s*\}\s*;?/g,
  new RegExp(String.raw`(?:\bexport\s+)?\btype\s+[\w$]+\s*(?:<[^=]*>)?\s*=[^;]*?(?:;|${STATEMENT_START})`, 'g'),
];

/**
 * What is left of a face once its allowed constructs are taken out, line by line. Works on the
 * top level only: everything inside brackets is blanked first, so a type's or an interface's
 * body is `{ }` by then.
 */
function implementationIn(masked: string): number[] {
  let depth = 0;
  let topLevel = '';
  for (const character of masked) {
    if ('([{'.includes(character)) depth++;
    const inside = depth > 0 && !'([{)]}'.includes(character);
    topLevel += inside && character !== '\n' ? ' ' : character;
    if (')]}'.includes(character)) depth = Math.max(0, depth - 1);
  }
  // Brackets nested inside brackets are blanked too, so `{ a: { } }` reads `{ }`.
  let collapsed = topLevel;
  for (let previous = ''; previous !== collapsed; ) {
    previous = collapsed;
    collapsed = collapsed.replace(/([([{])(\s*)[([{](\s*)[)\]}]/g, (_all, open: string, before: string, after: string) => open + before + ' ' + after + ' ');
  }
  let rest = collapsed;
  for (const construct of FACADE_CONSTRUCTS) rest = rest.replace(construct, (found) => found.replace(/[^\n]/g, ' '));
  return rest.split('\n').flatMap((line, at) => (line.trim() ? [at + 1] : []));
}
