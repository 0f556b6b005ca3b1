import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ensurePrivateDir, ensurePrivateFile } from './files.ts';

// Invariant: what tuangou keeps is its owner's only, and a folder others share (/tmp) keeps its mode.
describe('private files and folders', () => {
  const made: string[] = [];
  const scratch = () => {
    const dir = mkdtempSync(join(tmpdir(), 'tuangou-files-'));
    made.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const modeOf = (path: string) => statSync(path).mode & 0o7777;

  it('creates a missing folder 0700 and tightens one an older version left open', () => {
    const root = scratch();
    ensurePrivateDir(join(root, 'data'));
    expect(modeOf(join(root, 'data'))).toBe(0o700);
    chmodSync(join(root, 'data'), 0o755);
    ensurePrivateDir(join(root, 'data'));
    expect(modeOf(join(root, 'data'))).toBe(0o700);
  });

  it('leaves a shared sticky folder (like /tmp) as it is: a database file directly in it must not close it to others', () => {
    const shared = join(scratch(), 'shared');
    ensurePrivateDir(shared);
    chmodSync(shared, 0o1777);
    ensurePrivateDir(shared);
    expect(modeOf(shared)).toBe(0o1777);
  });

  it('creates a file 0600 and tightens an open one', () => {
    const path = join(scratch(), 'secret');
    ensurePrivateFile(path);
    expect(modeOf(path)).toBe(0o600);
    chmodSync(path, 0o644);
    ensurePrivateFile(path);
    expect(modeOf(path)).toBe(0o600);
  });
});
