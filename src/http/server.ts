/**
 * The Background Task Manager over HTTP: a JSON API under /api and the admin page, both over the
 * same client functions registry code calls (TaskClient, RegistryClient) and the read-only
 * registry views. Listens on loopback unless told otherwise; every /api route but login and
 * health needs a session (cookie + CSRF token) or HTTP Basic credentials; viewers only read.
 */
import { fastifyTracingPlugin } from '../telemetry/tracing.ts';
import { registerHealthRoutes } from './routes-health.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifyStatic from '@fastify/static';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import type { Logger } from '../log.ts';
import type { RegistryClient } from '../client/registry.ts';
import type { TaskClient } from '../client/task-client.ts';
import { basicCredentials, csrfMatches, loadCredentials, SessionStore, type Credentials, type Principal, type Session } from './auth.ts';
import { FailedAttempts } from './attempts.ts';
import { toHttpError, HttpError } from './errors.ts';
import { registerRegistryRoutes } from './routes-registry.ts';
import { registerTaskRoutes } from './routes-tasks.ts';

const PUBLIC_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'public');
export const SESSION_COOKIE = 'tm_session';
/** Over TLS the cookie is __Host-: Secure, host-only, path / (a subdomain or plain HTTP cannot set it). */
export const SECURE_SESSION_COOKIE = '__Host-tm_session';
/** A changing request with Basic credentials must carry this header: a form or a link cannot add it. */
export const CHANGE_HEADER = 'x-requested-with';
/** Bodies are small JSON documents; anything larger is refused before it is parsed. */
export { BODY_LIMIT } from './errors.ts';
import { BODY_LIMIT } from './errors.ts';
import { createHttpMetrics } from './metrics.ts';
import type { Guard } from './guard.ts';

export interface AdminServerDeps {
  config: Config;
  pool: Pool;
  tasks: TaskClient;
  registry: RegistryClient;
  logger: Logger;
  /** Base URL of the Temporal Web UI, for links to a task's workflow. */
  temporalUiUrl?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
    session?: Session;
    /** Signed in with HTTP Basic credentials on this request. */
    basic?: boolean;
  }
}

export interface AdminServer {
  app: FastifyInstance;
  url: string;
  credentials: Credentials;
  close(): Promise<void>;
}

/** Builds the server (routes, auth, errors) without listening: tests call app.inject on it. */
export async function buildAdminServer(deps: AdminServerDeps): Promise<{ app: FastifyInstance; credentials: Credentials }> {
  const credentials = loadCredentials(deps.config);
  const secure = deps.config.http.secureCookies;
  const app = Fastify({
    bodyLimit: BODY_LIMIT,
    // Our logger, one level quieter at info: fastify's request lines (method, URL, status; never
    // headers or bodies) show only at debug.
    loggerInstance: deps.logger.child({ component: 'http' }, { level: deps.logger.level === 'info' ? 'warn' : deps.logger.level }) as FastifyBaseLogger,
    trustProxy: deps.config.http.trustProxy ?? false,
  });

  // Request spans named by route (tracing on only): first, so every hook and handler is inside.
  const tracing = await fastifyTracingPlugin();
  if (tracing) await app.register(tracing);
  await app.register(fastifyCookie);
  await app.register(fastifyRateLimit, { global: false });
  const metrics = createHttpMetrics(app);
  addSecurityHeaders(app, secure);
  addErrorAnswers(app);
  const guard = addSignIn(app, {
    credentials,
    sessions: new SessionStore(deps.pool),
    metrics,
    secure,
    temporalUiUrl: deps.temporalUiUrl,
    namespace: deps.tasks.client.options.namespace,
  });

  app.get('/api/health', async () => ({ ok: true }));
  app.get('/api/metrics', { onRequest: guard('read') }, async (_req, reply) => {
    void reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  registerTaskRoutes(app, { tasks: deps.tasks, guard, temporalUiUrl: deps.temporalUiUrl });
  registerRegistryRoutes(app, { pool: deps.pool, registry: deps.registry, tasks: deps.tasks, guard });
  await registerHealthRoutes(app, { pool: deps.pool, tasks: deps.tasks, guard, prometheusUrl: deps.config.prometheusUrl });

  await app.register(fastifyStatic, { root: PUBLIC_DIR, prefix: '/', index: 'index.html' });
  return { app, credentials };
}

/** Every answer: no sniffing, no framing, no referrer, a strict CSP, no caching; HSTS over TLS. */
function addSecurityHeaders(app: FastifyInstance, secure: boolean) {
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('X-Frame-Options', 'DENY');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header(
      'Content-Security-Policy',
      "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    );
    reply.header('Cache-Control', 'no-store');
    if (secure) reply.header('Strict-Transport-Security', 'max-age=31536000');
    return payload;
  });
}

/** Errors as JSON `{ error, field?, allowed? }` with the status of whose fault they are; unknown routes 404. */
function addErrorAnswers(app: FastifyInstance) {
  app.setErrorHandler((err, req, reply) => {
    const e = toHttpError(err, req.routeOptions?.bodyLimit);
    if (e.status >= 500) req.log.error({ err: (err as Error).message, url: req.url.split('?')[0] }, 'request failed');
    if ('retryAfterSeconds' in e.body && e.body.retryAfterSeconds) void reply.header('Retry-After', String(e.body.retryAfterSeconds));
    void reply.status(e.status).send(e.body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
}

interface SignInDeps {
  credentials: Credentials;
  sessions: SessionStore;
  metrics: ReturnType<typeof createHttpMetrics>;
  secure: boolean;
  temporalUiUrl?: string;
  namespace: string;
}

type SignIn = (req: FastifyRequest, user: string, password: string, via: string) => Principal;
interface SessionCookie {
  name: string;
  set(reply: FastifyReply, value: string, maxAge?: number): void;
}

/**
 * Who is calling (Basic credentials for scripts, a session cookie for the page), sign-in and
 * sign-out with failures limited per client address and user; returns the routes' guard.
 */
function addSignIn(app: FastifyInstance, deps: SignInDeps): Guard {
  const cookie = sessionCookie(deps.secure);
  const signIn = limitedSignIn(deps.credentials, deps.metrics);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    if (!req.url.startsWith('/api/')) return;
    const basic = basicCredentials(req.headers.authorization);
    if (basic) {
      req.principal = signIn(req, basic.user, basic.password, 'basic');
      req.basic = true;
      return;
    }
    const session = await deps.sessions.get(req.cookies[cookie.name]);
    if (session) {
      req.session = session;
      req.principal = { user: session.user, role: session.role };
    }
  });
  addSessionRoutes(app, deps, signIn, cookie);
  return guard;
}

function sessionCookie(secure: boolean): SessionCookie {
  const name = secure ? SECURE_SESSION_COOKIE : SESSION_COOKIE;
  return {
    name,
    set: (reply, value, maxAge) =>
      void reply.setCookie(name, value, { path: '/', httpOnly: true, sameSite: 'strict', secure, ...(maxAge !== undefined ? { maxAge } : {}) }),
  };
}

/** Checks credentials on any path, counting and logging failures per client address and user. */
function limitedSignIn(credentials: SignInDeps['credentials'], metrics: SignInDeps['metrics']): SignIn {
  const attempts = new FailedAttempts();
  return (req, user, password, via) => {
    const address = req.ip;
    const wait = attempts.blockedFor(user, address);
    if (wait > 0) {
      metrics.failedSignIn(via, 'blocked');
      req.log.warn({ user: user.slice(0, 100), address, via }, 'sign-in refused: too many failures');
      throw new HttpError(429, `too many failed sign-ins from ${address}; try again in ${Math.ceil(wait / 1000)} s`, {
        retryAfterSeconds: Math.ceil(wait / 1000),
      });
    }
    const p = credentials.check(user, password);
    if (!p) {
      attempts.fail(user, address);
      metrics.failedSignIn(via, 'wrong');
      req.log.warn({ user: user.slice(0, 100), address, via }, 'failed sign-in');
      throw new HttpError(401, 'wrong user name or password');
    }
    attempts.succeed(user, address);
    return p;
  };
}

/** Route guard: signed in; for changes also the admin role and, with a cookie session, the CSRF token. */
const guard: Guard = (need) => async (req) => {
  if (!req.principal) throw new HttpError(401, 'sign in first (POST /api/login, or HTTP Basic credentials)');
  if (need === 'act') {
    // A browser sends the cookie by itself; the token proves the request came from our page.
    // Basic credentials are never sent by a browser on its own (we never ask it for them).
    if (req.session && !csrfMatches(req.session, req.headers['x-csrf-token'])) throw new HttpError(403, 'missing or wrong X-CSRF-Token header');
    // A cross-site form can carry Basic credentials the browser cached; it cannot add a header.
    if (req.basic && !req.headers[CHANGE_HEADER]) throw new HttpError(403, `a change with Basic credentials needs the header X-Requested-With (any value)`);
    if (req.principal.role !== 'admin') throw new HttpError(403, `user ${req.principal.user} has the read-only viewer role`);
  }
};

/** The page's sign-in, sign-out and "who am I". */
function addSessionRoutes(app: FastifyInstance, { sessions, temporalUiUrl, namespace }: SignInDeps, signIn: SignIn, cookie: SessionCookie): void {
  app.post('/api/login', { config: { rateLimit: { max: 20, timeWindow: '1 minute' } } }, async (req, reply) => {
    const body = (req.body ?? {}) as { user?: unknown; password?: unknown };
    if (typeof body.user !== 'string' || typeof body.password !== 'string')
      throw new HttpError(400, 'user and password must be strings', { field: typeof body.user !== 'string' ? 'user' : 'password' });
    const p = signIn(req, body.user, body.password, 'login');
    await sessions.delete(req.cookies[cookie.name]);
    const s = await sessions.create(p);
    cookie.set(reply, s.id);
    return { user: s.user, role: s.role, csrfToken: s.csrfToken };
  });

  app.post('/api/logout', async (req, reply) => {
    await sessions.delete(req.cookies[cookie.name]);
    cookie.set(reply, '', 0);
    return { ok: true };
  });

  app.get('/api/session', { onRequest: guard('read') }, async (req) => ({
    user: req.principal!.user,
    role: req.principal!.role,
    csrfToken: req.session?.csrfToken,
    temporalUiUrl,
    namespace,
  }));
}

/** Builds and starts the server on config.http.host:port. */
export async function startAdminServer(deps: AdminServerDeps): Promise<AdminServer> {
  const { app, credentials } = await buildAdminServer(deps);
  await app.listen({ host: deps.config.http.host, port: deps.config.http.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : deps.config.http.port;
  const host = deps.config.http.host.includes(':') ? `[${deps.config.http.host}]` : deps.config.http.host;
  return { app, url: `http://${host}:${port}`, credentials, close: () => app.close() };
}
