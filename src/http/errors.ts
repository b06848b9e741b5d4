/** Every error leaves the API as JSON `{ error, field?, allowed? }` with a status that says whose fault it was. */
import type { z } from 'zod';
import { QueuedForWorkerError } from '../client/worker-wait.ts';
import { SetupError, UserError } from '../user-error.ts';

/** Largest request body of most routes (fastify's default): sign-in, status changes, small forms. */
export const BODY_LIMIT = 1024 * 1024;
/**
 * Largest body of the two routes that take up to 10,000 record keys of up to 512 characters
 * (adding a task, retrying quarantined records): 5 MB of ASCII, 20 MB when each character takes
 * UTF-8's 4 bytes. Only those routes read so much, and only after their guard let the caller in.
 */
export const KEYS_BODY_LIMIT = 24 * 1024 * 1024;

export interface ErrorBody {
  error: string;
  field?: string;
  allowed?: string[];
  /** 429: seconds until the client may try again (also sent as Retry-After). */
  retryAfterSeconds?: number;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Omit<ErrorBody, 'error'> = {},
  ) {
    super(message);
  }
}

/** 202: the work is queued for a worker, none of which has taken it up yet (not an error of the caller's). */
export interface QueuedBody {
  queued: true;
  message: string;
}

export function toHttpError(err: unknown, bodyLimit = BODY_LIMIT): { status: number; body: ErrorBody | QueuedBody } {
  const e = err as Error & { statusCode?: number; code?: string; validation?: unknown };
  if (err instanceof HttpError) return { status: err.status, body: { error: err.message, ...err.extra } };
  if (err instanceof QueuedForWorkerError) return { status: 202, body: { queued: true, message: err.message } };
  // The caller's to mend (bad input, not found, wrong state, refused data, a service down): its own status.
  if (err instanceof UserError && !(err instanceof SetupError)) {
    return {
      status: err.httpStatus,
      body: { error: err.message, ...(err.field ? { field: err.field } : {}), ...(err.allowed ? { allowed: [...err.allowed] } : {}) },
    };
  }
  // Fastify's own: malformed JSON, too large, wrong content type, rate limited.
  if (e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { status: 413, body: { error: `request body is larger than the limit of ${bodyLimit} bytes` } };
  if (e?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return { status: 415, body: { error: 'send JSON (Content-Type: application/json)' } };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return { status: e.statusCode, body: { error: e.message } };
  return { status: 500, body: { error: 'internal error; see the server log' } };
}

/** Parses with zod; the first problem becomes a 400 naming its field. */
export function parseOr400<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value ?? {}, { reportInput: true });
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.length ? String(issue.path[0]) : issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
  const allowed = issue.code === 'invalid_value' ? issue.values.map(String) : undefined;
  const got = issue.input === undefined ? 'missing' : JSON.stringify(issue.input)?.slice(0, 200);
  const message =
    issue.code === 'unrecognized_keys'
      ? `unknown field ${JSON.stringify(issue.keys[0])}`
      : allowed
        ? `${field ?? 'body'} ${got} is not one of ${allowed.join(', ')}`
        : `${field ?? 'body'} ${got}: ${issue.message}`;
  throw new HttpError(400, message, { ...(field ? { field } : {}), ...(allowed ? { allowed } : {}) });
}
