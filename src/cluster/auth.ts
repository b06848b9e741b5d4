/**
 * The cluster's front door: TLS on the frontend and JWT authorization by the server's default
 * authorizer and claim mapper. Kept in DATA_DIR/cluster/auth and made once: a CA and the
 * frontend's certificate (openssl), an RS256 signing key and its JWKS file (jose). The frontend
 * reads the JWKS over HTTP (the server fetches keys only by URL), so the cluster serves the file on
 * loopback. Tokens carry Temporal's `permissions` claim: "<namespace>:<read|write|admin>".
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { calculateJwkThumbprint, exportJWK, importPKCS8, SignJWT } from 'jose';
import { InvalidInputError } from '../client/registry.ts';
import { issueCertificate, makeCa } from './certificates.ts';

/** The name in the frontend's certificate (it also holds 127.0.0.1); clients set TEMPORAL_TLS_SERVER_NAME to it. */
export const TLS_SERVER_NAME = 'localhost';
export const ROLES = ['read', 'write', 'admin'] as const;
/** The longest token `taskmgr cluster-token` mints; the cluster's own processes get tokens this long too, minted at each start. */
export const MAX_TOKEN_DAYS = 400;

export interface ClusterAuthFiles {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  signingKeyFile: string;
  jwksFile: string;
}

export const authFiles = (dir: string): ClusterAuthFiles => ({
  dir,
  caFile: path.join(dir, 'ca.pem'),
  certFile: path.join(dir, 'frontend.pem'),
  keyFile: path.join(dir, 'frontend.key'),
  signingKeyFile: path.join(dir, 'jwt-signing-key.pem'),
  jwksFile: path.join(dir, 'jwks.json'),
});

/** A certificate that expires within this many days is made again at start. */
const RENEW_WITHIN_DAYS = 30;

const expiresSoon = (certFile: string) =>
  Date.parse(new crypto.X509Certificate(fs.readFileSync(certFile)).validTo) < Date.now() + RENEW_WITHIN_DAYS * 86_400_000;

/** Makes whatever is missing or about to expire: the CA (10 years), the frontend's certificate (397 days), the signing key and JWKS. */
export async function prepareClusterAuth(dir: string): Promise<ClusterAuthFiles> {
  const files = authFiles(dir);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caKey = path.join(dir, 'ca.key');
  if (!fs.existsSync(files.caFile) || !fs.existsSync(caKey) || expiresSoon(files.caFile)) {
    makeCa({ keyFile: caKey, certFile: files.caFile, subject: 'registry-taskmgr cluster CA', days: 3650 });
    fs.rmSync(files.certFile, { force: true });
  }
  if (!fs.existsSync(files.certFile) || expiresSoon(files.certFile)) {
    const frontend = {
      keyFile: files.keyFile,
      certFile: files.certFile,
      subject: TLS_SERVER_NAME,
      days: 397,
      usage: 'serverAuth',
      altNames: `DNS:${TLS_SERVER_NAME},IP:127.0.0.1`,
    };
    issueCertificate({ keyFile: caKey, certFile: files.caFile }, frontend);
  }
  if (!fs.existsSync(files.signingKeyFile)) {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(files.signingKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    fs.rmSync(files.jwksFile, { force: true });
  }
  if (!fs.existsSync(files.jwksFile)) {
    const publicJwk = await exportJWK(crypto.createPublicKey(fs.readFileSync(files.signingKeyFile)));
    const kid = await calculateJwkThumbprint(publicJwk);
    fs.writeFileSync(files.jwksFile, `${JSON.stringify({ keys: [{ ...publicJwk, kid, alg: 'RS256', use: 'sig' }] }, null, 2)}\n`);
  }
  for (const f of [caKey, files.keyFile, files.signingKeyFile]) fs.chmodSync(f, 0o600);
  return files;
}

/** Checks one permission as the server's claim mapper reads it: "<namespace>:<role>". */
export function parsePermission(text: string): string {
  const m = /^([A-Za-z0-9._-]{1,255}):([a-z]+)$/.exec(text);
  if (!m || !(ROLES as readonly string[]).includes(m[2]!)) {
    throw new InvalidInputError(`permission ${JSON.stringify(text)} is not "<namespace>:<role>" with role one of ${ROLES.join(', ')} (e.g. default:write)`);
  }
  return text;
}

export interface TokenRequest {
  subject: string;
  permissions: string[];
  days: number;
}

/** Signs a token the frontend accepts (RS256, the JWKS key id, Temporal's `permissions` claim). */
export async function mintToken(files: ClusterAuthFiles, request: TokenRequest): Promise<string> {
  if (!Number.isInteger(request.days) || request.days < 1 || request.days > MAX_TOKEN_DAYS) {
    throw new InvalidInputError(`days ${request.days} is not a whole number from 1 to ${MAX_TOKEN_DAYS}`);
  }
  if (!/^[\x21-\x7e]{1,255}$/.test(request.subject))
    throw new InvalidInputError(`subject ${JSON.stringify(request.subject)} must be 1 to 255 printable characters without spaces`);
  if (request.permissions.length === 0) throw new InvalidInputError('a token needs at least one permission (e.g. default:write)');
  request.permissions.forEach(parsePermission);
  if (!fs.existsSync(files.signingKeyFile))
    throw new InvalidInputError(`no cluster signing key at ${files.signingKeyFile}: run \`taskmgr cluster\` once first`);
  const { keys } = JSON.parse(fs.readFileSync(files.jwksFile, 'utf8')) as { keys: { kid: string }[] };
  const key = await importPKCS8(fs.readFileSync(files.signingKeyFile, 'utf8'), 'RS256');
  return new SignJWT({ permissions: request.permissions })
    .setProtectedHeader({ alg: 'RS256', kid: keys[0]!.kid, typ: 'JWT' })
    .setSubject(request.subject)
    .setIssuedAt()
    .setExpirationTime(`${request.days}d`)
    .sign(key);
}

/** Serves the JWKS file on loopback for the frontend's key provider; re-read on every request, so a new key is picked up. */
export async function serveJwks(files: ClusterAuthFiles): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/jwks.json') return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' }).end(fs.readFileSync(files.jwksFile));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/jwks.json`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
