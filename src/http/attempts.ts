/**
 * Failed sign-ins, counted per client address and per user at that address, over a sliding
 * window. Limiting by address stops guessing from one place; limiting a user only at the address
 * that fails means one attacker cannot lock every user out. Memory is bounded: old failures are
 * dropped, and past MAX_KEYS the oldest keys go first.
 */
const MAX_KEYS = 10_000;

export interface AttemptLimits {
  perAddress: number;
  perUserAtAddress: number;
  windowMs: number;
}

export const DEFAULT_ATTEMPT_LIMITS: AttemptLimits = { perAddress: 30, perUserAtAddress: 5, windowMs: 15 * 60_000 };

export class FailedAttempts {
  private readonly failures = new Map<string, number[]>();
  constructor(private readonly limits: AttemptLimits = DEFAULT_ATTEMPT_LIMITS) {}

  /** Milliseconds until `user` may try again from `address`; 0 when they may now. */
  blockedFor(user: string, address: string, now = Date.now()): number {
    const wait = (key: string, max: number) => {
      const times = this.recent(key, now);
      return times.length >= max ? times[times.length - max]! + this.limits.windowMs - now : 0;
    };
    return Math.max(wait(`a:${address}`, this.limits.perAddress), wait(`u:${address}:${user}`, this.limits.perUserAtAddress));
  }

  fail(user: string, address: string, now = Date.now()): void {
    for (const key of [`a:${address}`, `u:${address}:${user}`]) this.failures.set(key, [...this.recent(key, now), now]);
    while (this.failures.size > MAX_KEYS) this.failures.delete(this.failures.keys().next().value!);
  }

  /** A success clears the user's failures at that address (not the address's). */
  succeed(user: string, address: string): void {
    this.failures.delete(`u:${address}:${user}`);
  }

  private recent(key: string, now: number): number[] {
    const times = (this.failures.get(key) ?? []).filter((t) => t > now - this.limits.windowMs);
    if (times.length) this.failures.set(key, times);
    else this.failures.delete(key);
    return times;
  }
}
