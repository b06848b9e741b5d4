/** Admin and viewer passwords configured as scrypt hashes (src/http/password-hash.ts, auth.ts). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { AuthConfigError, loadCredentials } from '../../src/http/auth.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'taskmgr.js');

describe('password hashes', () => {
  const hash = execFileSync(process.execPath, [BIN, 'hash-password'], { input: 'correct horse battery staple\n' }).toString().trim();

  it('taskmgr hash-password prints a salted scrypt hash, different each time', () => {
    assert.match(hash, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.notEqual(execFileSync(process.execPath, [BIN, 'hash-password'], { input: 'correct horse battery staple\n' }).toString().trim(), hash);
  });

  it('accepts the password of a hashed account and refuses others', () => {
    const credentials = loadCredentials(loadConfig({ ADMIN_PASSWORD: hash, VIEWER_PASSWORD: 'plain text still works' }));
    assert.deepEqual(credentials.check('admin', 'correct horse battery staple'), { user: 'admin', role: 'admin' });
    assert.deepEqual(credentials.check('admin', 'correct horse battery staple'), { user: 'admin', role: 'admin' }, 'again, from the cache');
    assert.equal(credentials.check('admin', 'correct horse battery stapl'), undefined);
    assert.equal(credentials.check('viewer', 'correct horse battery staple'), undefined);
    assert.deepEqual(credentials.check('viewer', 'plain text still works'), { user: 'viewer', role: 'viewer' });
  });

  it('refuses a malformed hash at start, naming the variable and the form', () => {
    assert.throws(
      () => loadCredentials(loadConfig({ ADMIN_PASSWORD: 'scrypt$1000$8$1$c2FsdA==$aGFzaA==' })),
      (err: Error) => err instanceof AuthConfigError && /ADMIN_PASSWORD .*expected scrypt\$<N, a power of 2/.test(err.message),
    );
  });

  it('refuses a short password to hash', () => {
    assert.throws(
      () => execFileSync(process.execPath, [BIN, 'hash-password'], { input: 'short\n', stdio: ['pipe', 'pipe', 'pipe'] }),
      (err: { stderr: Buffer }) => /at least 12 characters/.test(err.stderr.toString()),
    );
  });
});
