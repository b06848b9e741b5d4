/**
 * Admin and viewer passwords may be configured as scrypt hashes instead of plain text:
 * `scrypt$<N>$<r>$<p>$<salt, base64>$<hash, base64>`, made by `taskmgr hash-password`. Checking
 * one costs tens of milliseconds, so a verified (user, password) pair is remembered by digest for
 * the process's life: scripts signing in with Basic on every request pay it once.
 */
import crypto from 'node:crypto';

const PREFIX = 'scrypt$';
const PARAMS = { N: 2 ** 15, r: 8, p: 1 };
const KEY_LENGTH = 32;
const MAX_MEMORY = 128 * PARAMS.N * PARAMS.r * 2;

export const isPasswordHash = (stored: string) => stored.startsWith(PREFIX);

export function hashPassword(password: string): string {
  const salt = crypto.randomBytes(16);
  const hash = crypto.scryptSync(password, salt, KEY_LENGTH, { ...PARAMS, maxmem: MAX_MEMORY });
  return [PREFIX.slice(0, -1), PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64'), hash.toString('base64')].join('$');
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/** Parses a stored hash; throws naming the expected form when it is not one. */
export function parsePasswordHash(stored: string): ParsedHash {
  const [, n, r, p, salt, hash] = stored.split('$');
  const parsed = { N: Number(n), r: Number(r), p: Number(p), salt: Buffer.from(salt ?? '', 'base64'), hash: Buffer.from(hash ?? '', 'base64') };
  const powerOfTwo = Number.isInteger(parsed.N) && parsed.N > 1 && (parsed.N & (parsed.N - 1)) === 0;
  if (!powerOfTwo || !(parsed.r >= 1) || !(parsed.p >= 1) || parsed.salt.length < 8 || parsed.hash.length < 16 || parsed.N > 2 ** 20) {
    throw new Error('expected scrypt$<N, a power of 2 up to 2^20>$<r>$<p>$<salt base64>$<hash base64> (from `taskmgr hash-password`)');
  }
  return parsed;
}

export function verifyPassword(parsed: ParsedHash, password: string): boolean {
  const actual = crypto.scryptSync(password, parsed.salt, parsed.hash.length, { N: parsed.N, r: parsed.r, p: parsed.p, maxmem: 128 * parsed.N * parsed.r * 2 });
  return crypto.timingSafeEqual(actual, parsed.hash);
}
