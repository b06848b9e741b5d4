/**
 * An error that is the caller's (or the operator's) to mend, not a bug: its message is written for
 * them and names the bad value. The HTTP API answers it with `httpStatus` and the `field` and
 * `allowed` values it names; taskmgr prints its message on one line and exits 1. Anything else is
 * a bug: a 500, or a stack trace with LOG_LEVEL=debug.
 */
export class UserError extends Error {
  /** 400 bad input, 404 not found, 409 not in a state for it, 422 data refused, 503 a service is down. */
  readonly httpStatus: number = 400;
  readonly field?: string;
  readonly allowed?: readonly string[];

  constructor(message: string, details: { field?: string; allowed?: readonly string[] } = {}) {
    super(message);
    this.field = details.field;
    this.allowed = details.allowed;
  }
}

/** What the operator must set up (configuration, a tool, credentials): the process cannot go on. */
export class SetupError extends UserError {
  override readonly httpStatus: number = 500;
}
