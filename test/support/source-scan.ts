/**
 * A small TypeScript scanner for the structure check: enough to tell code from comments,
 * strings, templates (with nested `${…}`) and regular expressions, and to read a file's
 * relative imports. No compiler: the check reads files only.
 */
export interface Literal {
  text: string;
  line: number;
  /** For a template: the tag before it (`sql`), '' when untagged; undefined for a quoted string. */
  tag?: string;
}

export interface ScannedSource {
  imports: string[];
  literals: Literal[];
  /** The source with comments blanked out (newlines kept), literals left in place. */
  code: string;
  /** As code, with the insides of literals blanked too (their quotes kept), so brackets can be counted. */
  masked: string;
}

const REGEX_AFTER_WORDS = new Set(['return', 'typeof', 'case', 'do', 'else', 'in', 'of', 'new', 'delete', 'void', 'throw', 'yield', 'await', 'instanceof']);

/**
 * A small TypeScript scanner: enough to tell code from comments, strings, templates (with
 * nested `${…}`) and regular expressions, which is all the checks need.
 */
export function scanSource(text: string): ScannedSource {
  const literals: Literal[] = [];
  const code = text.split('');
  const masked = text.split('');
  let position = 0;
  let line = 1;
  let lastSignificant = '';
  let lastWord = '';

  const advance = () => {
    if (text[position] === '\n') line++;
    position++;
  };
  const blank = (from: number, to: number) => {
    for (let at = from; at < to; at++) if (code[at] !== '\n') code[at] = masked[at] = ' ';
  };
  const mask = (from: number, to: number) => {
    for (let at = from; at < to; at++) if (masked[at] !== '\n') masked[at] = ' ';
  };

  const readQuoted = (quote: string): string => {
    const startLine = line;
    const start = position;
    advance();
    let value = '';
    while (position < text.length && text[position] !== quote && text[position] !== '\n') {
      if (text[position] === '\\') {
        value += text[position + 1] ?? '';
        advance();
        advance();
        continue;
      }
      value += text[position];
      advance();
    }
    advance();
    mask(start + 1, position - 1);
    literals.push({ text: value, line: startLine });
    return value;
  };

  const readTemplate = (tag: string) => {
    const startLine = line;
    const start = position;
    advance();
    let value = '';
    while (position < text.length && text[position] !== '`') {
      if (text[position] === '\\') {
        value += text[position + 1] ?? '';
        advance();
        advance();
      } else if (text[position] === '$' && text[position + 1] === '{') {
        advance();
        advance();
        lastSignificant = '{';
        lastWord = '';
        readCode(true);
        advance();
        value += '${…}';
      } else {
        value += text[position];
        advance();
      }
    }
    advance();
    mask(start + 1, position - 1);
    literals.push({ text: value, line: startLine, tag });
  };

  const readRegex = () => {
    const start = position;
    advance();
    let inClass = false;
    while (position < text.length && text[position] !== '\n') {
      const character = text[position];
      if (character === '\\') advance();
      else if (character === '[') inClass = true;
      else if (character === ']') inClass = false;
      else if (character === '/' && !inClass) break;
      advance();
    }
    advance();
    while (/[a-z]/i.test(text[position] ?? '')) advance();
    mask(start, position);
  };

  /** Reads code until the end, or until the `}` that closes a template's `${` when nested. */
  function readCode(nested: boolean): void {
    let depth = 0;
    while (position < text.length) {
      const character = text[position]!;
      const next = text[position + 1];
      if (character === '/' && next === '/') {
        const start = position;
        while (position < text.length && text[position] !== '\n') advance();
        blank(start, position);
      } else if (character === '/' && next === '*') {
        const start = position;
        while (position < text.length && !(text[position] === '*' && text[position + 1] === '/')) advance();
        advance();
        advance();
        blank(start, position);
      } else if (character === '"' || character === "'") {
        readQuoted(character);
        lastSignificant = character;
        lastWord = '';
      } else if (character === '`') {
        readTemplate(/[\w$]/.test(lastSignificant) ? lastWord : '');
        lastSignificant = '`';
        lastWord = '';
      } else if (character === '/' && (lastSignificant === '' || '(,=:[!&|?{};+-*%<>~^'.includes(lastSignificant) || REGEX_AFTER_WORDS.has(lastWord))) {
        readRegex();
        lastSignificant = '/';
        lastWord = '';
      } else if (/[\w$]/.test(character)) {
        let word = '';
        while (position < text.length && /[\w$]/.test(text[position]!)) {
          word += text[position];
          advance();
        }
        lastWord = word;
        lastSignificant = word[word.length - 1]!;
      } else {
        if (character === '{') depth++;
        if (character === '}') {
          if (nested && depth === 0) return;
          depth--;
        }
        if (!/\s/.test(character)) {
          lastSignificant = character;
          lastWord = '';
        }
        advance();
      }
    }
  }

  readCode(false);
  const maskedText = masked.join('');
  const imports: string[] = [];
  // import … from '…', export … from '…', import '…', import('…'), import x = require('…'):
  // matched where literals are blanked (so an import inside a string is none), read from the text.
  const importPattern = /(?:^|[^\w$.])(?:(?:import|export)\s+(?:type\s+)?(?:[\w$*{}\s,]*?\s+from\s*)?|import\s*\(\s*|require\s*\(\s*)(['"])( +)\1/dg;
  for (const match of maskedText.matchAll(importPattern)) {
    const [start, end] = match.indices![2]!;
    imports.push(text.slice(start, end));
  }
  return { imports: imports.filter((specifier) => specifier.startsWith('./') || specifier.startsWith('../')), literals, code: code.join(''), masked: maskedText };
}

