/**
 * Who may use the admin API: an admin (everything) and a viewer (read-only). Credentials come
 * from configuration; on a loopback address with none configured, a random admin password is
 * made once and kept in DATA_DIR/admin-password (never logged). Passwords are compared as
 * SHA-256 digests with timingSafeEqual, so neither their content nor their length leaks through timing.
 */
import { SetupError } from '../user-error.ts';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import type { Config } from '../config.ts';
import { keptSecret } from '../kept-secret.ts';
import type { Pool } from '../db/pool.ts';
import { isPasswordHash, parsePasswordHash, verifyPassword } from './password-hash.ts';

export type Role = 'admin' | 'viewer';

export interface Principal {
  user: string;
  role: Role;
}

export class AuthConfigError extends SetupError {
  override name = 'AuthConfigError';
}

const digest = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest();
const sameSecret = (a: string, b: string) => crypto.timingSafeEqual(digest(a), digest(b));

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1';
  return false;
}

export interface Credentials {
  check(user: string, password: string): Principal | undefined;
  /** Where a generated admin password was written, when one was. */
  generatedPasswordFile?: string;
}

/** The accounts the server accepts; refuses a non-loopback listener without configured credentials. */
export function loadCredentials(config: Config): Credentials {
  const { http } = config;
  let adminPassword = http.adminPassword;
  let generatedPasswordFile: string | undefined;
  if (!adminPassword) {
    if (!isLoopback(http.host)) {
      throw new AuthConfigError(`HTTP_HOST=${http.host} is not a loopback address: set ADMIN_PASSWORD (and optionally VIEWER_PASSWORD) before listening on it`);
    }
    generatedPasswordFile = path.join(config.dataDir, 'admin-password');
    adminPassword = keptSecret(generatedPasswordFile);
  }
  if (http.viewerPassword && http.viewerUser === http.adminUser)
    throw new AuthConfigError(`VIEWER_USER must differ from ADMIN_USER (both are ${JSON.stringify(http.adminUser)})`);
  const accounts = [account(http.adminUser, adminPassword, 'admin', 'ADMIN_PASSWORD')];
  if (http.viewerPassword) accounts.push(account(http.viewerUser, http.viewerPassword, 'viewer', 'VIEWER_PASSWORD'));
  const verified = new Set<string>();
  return {
    generatedPasswordFile,
    check(user, password) {
      // Every account is compared, so the time taken does not tell which user names exist.
      let found: Principal | undefined;
      for (const a of accounts) {
        // Both checked whatever the user name: a hash is verified (slowly) for a wrong name too.
        const userMatches = sameSecret(a.user, user);
        const passwordMatches = a.matches(password, verified);
        if (userMatches && passwordMatches) found = { user: a.user, role: a.role };
      }
      return found;
    },
  };
}

/** An account whose password is plain text (compared by digest) or a scrypt hash. */
function account(user: string, password: string, role: Role, variable: string) {
  if (!isPasswordHash(password)) return { user, role, matches: (given: string) => sameSecret(password, given) };
  let parsed: ReturnType<typeof parsePasswordHash>;
  try {
    parsed = parsePasswordHash(password);
  } catch (err) {
    throw new AuthConfigError(`${variable} looks like a password hash but is not one: ${(err as Error).message}`);
  }
  return {
    user,
    role,
    matches(given: string, verified: Set<string>) {
      const key = digest(`${user}\u0000${given}`).toString('base64');
      if (verified.has(key)) return true;
      if (!verifyPassword(parsed, given)) return false;
      if (verified.size < 1000) verified.add(key);
      return true;
    },
  };
}

export interface Session extends Principal {
  id: string;
  csrfToken: string;
  expiresAt: number;
}

/**
 * Server-side sessions in PostgreSQL (so logout really ends one, and every replica of the page
 * knows every session). The cookie value is stored as its digest only.
 */
export class SessionStore {
  constructor(
    private readonly pool: Pool,
    private readonly ttlMs = 8 * 3600_000,
  ) {}

  async create(p: Principal): Promise<Session> {
    await this.pool.query('DELETE FROM http_sessions WHERE expires_at < now()');
    const s: Session = {
      ...p,
      id: crypto.randomBytes(32).toString('base64url'),
      csrfToken: crypto.randomBytes(32).toString('base64url'),
      expiresAt: Date.now() + this.ttlMs,
    };
    await this.pool.query('INSERT INTO http_sessions (id_digest, user_name, role, csrf_token, expires_at) VALUES ($1, $2, $3, $4, $5)', [
      sessionDigest(s.id),
      s.user,
      s.role,
      s.csrfToken,
      new Date(s.expiresAt),
    ]);
    return s;
  }

  async get(id: string | undefined): Promise<Session | undefined> {
    if (!id) return undefined;
    const { rows } = await this.pool.query<{ user_name: string; role: Role; csrf_token: string; expires_at: Date }>(
      'SELECT user_name, role, csrf_token, expires_at FROM http_sessions WHERE id_digest = $1 AND expires_at > now()',
      [sessionDigest(id)],
    );
    const r = rows[0];
    return r && { id, user: r.user_name, role: r.role, csrfToken: r.csrf_token, expiresAt: r.expires_at.getTime() };
  }

  async delete(id: string | undefined): Promise<void> {
    if (id) await this.pool.query('DELETE FROM http_sessions WHERE id_digest = $1', [sessionDigest(id)]);
  }
}

const sessionDigest = (id: string) => digest(id).toString('base64url');

/** Constant-time comparison of a submitted CSRF token with the session's. */
export function csrfMatches(session: Session, submitted: unknown): boolean {
  return typeof submitted === 'string' && sameSecret(session.csrfToken, submitted);
}

/** Parses an `Authorization: Basic` header (for scripts and curl). */
export function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
