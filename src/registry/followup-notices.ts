/**
 * Callers waiting for a follow-up learn of its end from PostgreSQL as it commits (LISTEN/NOTIFY),
 * not by asking again and again: completing an operation or a round notifies FOLLOWUP_DONE_CHANNEL
 * in its transaction, so the notice arrives only once the outcome is readable. One listening
 * connection per process serves every waiter, and is given back when none waits.
 */
import type { Pool, PoolClient, Queryable } from '../db/pool.ts';

export const FOLLOWUP_DONE_CHANNEL = 'registry_followup_done';
/** A waiter also looks again this often: a notice lost with a broken connection delays it by this at most. */
const SAFETY_RECHECK_MS = 5000;

/** Sent inside the completing transaction (delivered at its commit). */
export async function notifyFollowUpDone(tx: Queryable, id: string): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [FOLLOWUP_DONE_CHANNEL, id.slice(0, 7000)]);
}

export class FollowUpNotices {
  private listener?: Promise<PoolClient>;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly pool: Pool) {}

  /**
   * Resolves with `check()`'s first defined answer: at once, or after a follow-up completes.
   * The listener is in place before the first check, so a completion between them is not missed.
   */
  async waitUntil<T>(check: () => Promise<T | undefined>): Promise<T> {
    let wake = () => {};
    const waiter = () => wake();
    this.waiters.add(waiter);
    try {
      for (;;) {
        // Each time round: after a broken connection, a new one listens before the next check.
        await this.listen();
        const woken = new Promise<void>((resolve) => (wake = resolve));
        const answer = await check();
        if (answer !== undefined) return answer;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([woken, new Promise<void>((r) => (timer = setTimeout(r, SAFETY_RECHECK_MS)))]);
        clearTimeout(timer);
      }
    } finally {
      this.waiters.delete(waiter);
      if (this.waiters.size === 0) await this.stopListening();
    }
  }

  private listen(): Promise<PoolClient> {
    if (this.listener) return this.listener;
    const listener = (async () => {
      const client = await this.pool.connect();
      client.on('notification', () => this.waiters.forEach((w) => w()));
      // A broken connection: waiters listen on a new one at their next look; the safety recheck covers the gap.
      client.on('error', () => {
        if (this.listener === listener) this.listener = undefined;
        client.release(true);
      });
      await client.query(`LISTEN ${FOLLOWUP_DONE_CHANNEL}`);
      return client;
    })().catch((err: unknown) => {
      if (this.listener === listener) this.listener = undefined;
      throw err;
    });
    this.listener = listener;
    return listener;
  }

  private async stopListening(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    if (!listener) return;
    const client = await listener.catch(() => undefined);
    if (!client) return;
    client.removeAllListeners('notification');
    client.removeAllListeners('error');
    try {
      await client.query('UNLISTEN *');
      client.release();
    } catch (err) {
      client.release(err as Error);
    }
  }
}
