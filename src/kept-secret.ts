/** A random secret made once and kept in a file readable by this user only (mode 600), then reused. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export function keptSecret(file: string): string {
  if (fs.existsSync(file)) return fs.readFileSync(file, 'utf8').trim();
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // base64url: safe in a URL's password without escaping.
  const secret = crypto.randomBytes(18).toString('base64url');
  fs.writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
