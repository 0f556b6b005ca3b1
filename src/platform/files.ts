import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';

/**
 * What the platform keeps on disk (the SQLite file, the development secret, the sandbox keys)
 * is its owner's only: folders 0700, files 0600, tightened if an older version left them
 * readable to others. A shared folder is never tightened: one with the sticky bit (/tmp), or
 * one another user owns, holds other people's files too, and taking it away from them breaks
 * their programs (a database server's temporary tables in /tmp, for one).
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { mode, uid } = statSync(dir);
  const shared = (mode & STICKY_BIT) !== 0 || (process.getuid !== undefined && uid !== process.getuid());
  if (!shared && (mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

const STICKY_BIT = 0o1000;

/** Creates the file empty if missing (so it is born 0600, whatever the umask), else tightens it. */
export function ensurePrivateFile(path: string): void {
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
}
