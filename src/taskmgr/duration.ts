/**
 * Delays and intervals as registry code writes them ("15 seconds", "1 hour",
 * "7 days"), parsed here and never passed to SQL.
 * Pure: used by the client, the CLI and the workflows alike.
 */
import { UserError } from '../user-error.ts';

const UNITS: Record<string, number> = {
  millisecond: 1,
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 604_800_000,
};
const ALIASES: Record<string, string> = {
  ms: 'millisecond',
  s: 'second',
  sec: 'second',
  min: 'minute',
  m: 'minute',
  h: 'hour',
  hr: 'hour',
  d: 'day',
  w: 'week',
};

export const DURATION_FORMS = '"<number> <unit>" with unit milliseconds, seconds, minutes, hours, days or weeks (e.g. "15 seconds", "1 hour", "7 days")';

export class DurationError extends UserError {
  override name = 'DurationError';
}

/** Parses "15 seconds", "1.5 hours", "30 min", "7 days" into milliseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = typeof text === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$/.exec(text) : null;
  if (!m) throw new DurationError(`${what} ${JSON.stringify(text)} is not a duration; expected ${DURATION_FORMS}`);
  const unitWord = m[2]!.toLowerCase();
  const singular = unitWord.endsWith('s') && unitWord.length > 2 && UNITS[unitWord.slice(0, -1)] ? unitWord.slice(0, -1) : unitWord;
  const unit = UNITS[singular] !== undefined ? singular : ALIASES[unitWord];
  if (!unit) throw new DurationError(`${what} ${JSON.stringify(text)} has an unknown unit ${JSON.stringify(m[2])}; expected ${DURATION_FORMS}`);
  const ms = Number(m[1]) * UNITS[unit]!;
  if (!Number.isFinite(ms)) throw new DurationError(`${what} ${JSON.stringify(text)} is too large`);
  return Math.round(ms);
}

const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;

export interface ScheduleLimits {
  /** How far in the past an absolute time may be (clock skew); default 1 minute. */
  pastToleranceMs?: number;
  /** How far ahead a task may be scheduled; default 366 days. */
  maxAheadMs?: number;
}

/**
 * Resolves `scheduledFor` (a delay such as "1 hour", or an ISO timestamp with a time zone)
 * against `now` into epoch milliseconds. Refuses times in the past and too far ahead.
 */
export function resolveScheduledFor(value: string, now: number, limits: ScheduleLimits = {}): number {
  const past = limits.pastToleranceMs ?? 60_000;
  const ahead = limits.maxAheadMs ?? 366 * 86_400_000;
  let at: number;
  if (typeof value === 'string' && ISO_TIMESTAMP.test(value.trim())) {
    at = Date.parse(value);
    if (Number.isNaN(at)) throw new DurationError(`scheduledFor ${JSON.stringify(value)} is not a valid date`);
    if (at < now - past) throw new DurationError(`scheduledFor ${JSON.stringify(value)} is in the past; give a future time or a delay such as "15 seconds"`);
  } else {
    if (typeof value !== 'string') throw new DurationError(`scheduledFor must be a string, got ${typeof value}`);
    if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
      throw new DurationError(`scheduledFor ${JSON.stringify(value)} is not an ISO timestamp with a time zone (e.g. "2026-12-01T09:00:00Z")`);
    }
    try {
      at = now + parseDuration(value, 'scheduledFor');
    } catch (err) {
      // A schedule may also be a point in time: say so where the delay forms are listed.
      if (err instanceof DurationError && err.message.includes(DURATION_FORMS))
        throw new DurationError(`${err.message}, or an ISO timestamp with a time zone (e.g. "2026-12-01T09:00:00Z")`);
      throw err;
    }
  }
  if (at > now + ahead) throw new DurationError(`scheduledFor ${JSON.stringify(value)} is more than ${Math.round(ahead / 86_400_000)} days ahead`);
  return Math.max(at, now);
}

/** "1 hour" style text for a number of milliseconds (for display). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${+s.toFixed(1)} s`;
  if (s < 3600) return `${+(s / 60).toFixed(1)} min`;
  if (s < 86400) return `${+(s / 3600).toFixed(1)} h`;
  return `${+(s / 86400).toFixed(1)} days`;
}
