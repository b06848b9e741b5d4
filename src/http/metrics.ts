/**
 * The page server's metrics, in Prometheus format at GET /api/metrics (viewer or admin credentials:
 * Prometheus's basic_auth): requests and their durations per route, failed sign-ins, and Node's
 * process metrics. One registry per server (tests build several in one process).
 */
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export interface HttpMetrics {
  registry: Registry;
  /** A sign-in that failed (`wrong`) or was refused after too many failures (`blocked`), by path. */
  failedSignIn(via: string, outcome: 'wrong' | 'blocked'): void;
}

export function createHttpMetrics(app: FastifyInstance): HttpMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'taskmgr_http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'taskmgr_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method and route',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const signIns = new Counter({
    name: 'taskmgr_failed_sign_ins_total',
    help: 'Sign-ins with a wrong user or password, or refused after too many failures',
    labelNames: ['via', 'outcome'],
    registers: [registry],
  });
  app.addHook('onResponse', async (req, reply) => {
    // The route's pattern, not the URL: ids in paths would make a series per task.
    const route = req.routeOptions.url ?? 'no route';
    requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    durations.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
  return { registry, failedSignIn: (via, outcome) => signIns.inc({ via, outcome }) };
}
