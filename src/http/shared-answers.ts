/**
 * Identical reads from many pages share one answer for a moment. Temporal allows 10 visibility
 * requests per second per frontend (`frontend.namespaceRPS.visibility`); five people watching the
 * task grids (three lists every 3 s each) would otherwise come close, and ten would be throttled.
 * A change made through this server drops every kept answer, so its author sees it at once.
 */
import type { FastifyInstance } from 'fastify';

const MAX_KEPT = 500;

export class SharedAnswers<T> {
  private readonly kept = new Map<string, { at: number; answer: Promise<T> }>();
  constructor(private readonly forMs = 2000) {}

  /** The answer for `key`: one made less than forMs ago (or still coming), else a new one. */
  get(key: string, make: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = this.kept.get(key);
    if (hit && now - hit.at < this.forMs) return hit.answer;
    const answer = make();
    this.kept.set(key, { at: now, answer });
    // A failed answer is not kept: the next caller asks again.
    answer.catch(() => this.kept.get(key)?.answer === answer && this.kept.delete(key));
    for (const [k, v] of this.kept) if (this.kept.size > MAX_KEPT || now - v.at >= this.forMs) this.kept.delete(k);
    return answer;
  }

  clear(): void {
    this.kept.clear();
  }

  /** Forgets every kept answer after any change made through `app` (a request other than GET under /api/), so its author sees it at once. */
  clearedOnChange(app: FastifyInstance): this {
    app.addHook('onResponse', async (req) => {
      if (req.method !== 'GET' && req.url.startsWith('/api/')) this.clear();
    });
    return this;
  }
}
