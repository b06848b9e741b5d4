/** The cluster's tokens (src/cluster/auth.ts): what the server's claim mapper reads, and what is refused before signing. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { authFiles, mintToken, parsePermission, prepareClusterAuth, type ClusterAuthFiles } from '../../src/cluster/auth.ts';

describe('cluster tokens', () => {
  let dir: string;
  let files: ClusterAuthFiles;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-taskmgr-auth-'));
    files = await prepareClusterAuth(dir);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('signs RS256 tokens the JWKS verifies, with the permissions claim, subject and expiry', async () => {
    const token = await mintToken(files, { subject: 'php-registry', permissions: ['default:write', 'default:read'], days: 30 });
    const jwks = createLocalJWKSet(JSON.parse(fs.readFileSync(files.jwksFile, 'utf8')));
    const { payload, protectedHeader } = await jwtVerify(token, jwks);
    assert.equal(protectedHeader.alg, 'RS256');
    assert.ok(protectedHeader.kid, 'the key id the server looks the key up by');
    assert.deepEqual(payload.permissions, ['default:write', 'default:read']);
    assert.equal(payload.sub, 'php-registry');
    assert.ok(Math.abs(payload.exp! - payload.iat! - 30 * 86_400) < 2);
  });

  it('keeps its files across starts: the same CA, certificate and key; private keys readable by the owner only', async () => {
    const before = fs.readFileSync(files.jwksFile, 'utf8') + fs.readFileSync(files.certFile, 'utf8');
    await prepareClusterAuth(dir);
    assert.equal(fs.readFileSync(files.jwksFile, 'utf8') + fs.readFileSync(files.certFile, 'utf8'), before);
    for (const f of [files.keyFile, files.signingKeyFile, path.join(dir, 'ca.key')]) assert.equal(fs.statSync(f).mode & 0o077, 0, `${f} is private`);
  });

  it('refuses a permission, subject or lifetime the server could not use, naming the allowed values', async () => {
    assert.throws(() => parsePermission('default'), /permission "default" is not "<namespace>:<role>" with role one of read, write, admin/);
    assert.throws(() => parsePermission('default:owner'), /role one of read, write, admin/);
    assert.equal(parsePermission('temporal-system:admin'), 'temporal-system:admin');
    await assert.rejects(mintToken(files, { subject: 'x', permissions: ['default:write'], days: 401 }), /days 401 is not a whole number from 1 to 400/);
    await assert.rejects(
      mintToken(files, { subject: 'two words', permissions: ['default:write'], days: 1 }),
      /subject "two words" must be 1 to 255 printable characters/,
    );
    await assert.rejects(mintToken(files, { subject: 'x', permissions: [], days: 1 }), /at least one permission/);
    await assert.rejects(
      mintToken(authFiles(path.join(dir, 'none')), { subject: 'x', permissions: ['default:write'], days: 1 }),
      /no cluster signing key at .*run `taskmgr cluster` once first/,
    );
  });
});
