/** Temporal connection settings: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_* or a
 *  TOML profile, read by @temporalio/envconfig so TLS, mTLS and API keys work as in the temporal CLI. */
import { UserError } from '../user-error.ts';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { Client, Connection } from '@temporalio/client';
import type { NativeConnectionOptions } from '@temporalio/worker';
import type { Config } from '../config.ts';
import { temporalClientInterceptors } from '../telemetry/tracing.ts';

export interface TemporalTarget {
  connectionOptions: NativeConnectionOptions & { address: string };
  namespace: string;
}

/** Where to reach Temporal: the configured server, or the local dev server `npm start` runs. */
export function temporalTarget(config: Config, addressOverride?: string): TemporalTarget {
  const { connectionOptions, namespace } = loadClientConnectConfig();
  const address = addressOverride ?? connectionOptions.address ?? `127.0.0.1:${config.temporal.devPort}`;
  return { connectionOptions: { ...connectionOptions, address }, namespace: namespace ?? config.temporal.namespace };
}

/** An error and its causes, outermost first (the SDK wraps the server's answer in its own errors). */
export function* causeChain(err: unknown): Generator<object> {
  for (let e: unknown = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) yield e;
}

/**
 * The server refused an update because the run has taken all it may (limit.workflowExecutionMaxTotalUpdates,
 * 2,000 by default): a merge then leaves the add its own task instead of failing it.
 */
export function isUpdateLimitReached(err: unknown): boolean {
  for (const e of causeChain(err)) {
    const { code, details } = e as { code?: number; details?: string };
    if (code === 9 && /limit on the total number of distinct updates/i.test(details ?? '')) return true;
  }
  return false;
}

export class TemporalUnreachableError extends UserError {
  override name = 'TemporalUnreachable';
  override readonly httpStatus = 503;
}

const TLS_SETTINGS = 'check TEMPORAL_TLS_SERVER_CA_CERT_PATH, TEMPORAL_TLS_SERVER_NAME and TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH';

/** What the TLS layer said, per known reason: a configuration mistake that retrying will not mend. */
const TLS_REASONS: [RegExp, string][] = [
  [/UnknownIssuer/, "the server's certificate is not signed by a CA we trust (TEMPORAL_TLS_SERVER_CA_CERT_PATH)"],
  [/NotValidForName/, "the server's certificate is not valid for the name we expect (TEMPORAL_TLS_SERVER_NAME)"],
  [/CertificateRequired/, 'the server requires a client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH / TEMPORAL_TLS_CLIENT_KEY_PATH)'],
  [/fatal alert: (BadCertificate|UnknownCA|UnsupportedCertificate|CertificateUnknown|AccessDenied)/, 'the server refused our client certificate'],
  [/UnsupportedCertVersion/, 'a certificate is X.509 version 1; TLS here needs version 3 certificates'],
  [/InvalidCertificate\((Expired|NotValidYet)/, 'a certificate is expired or not yet valid'],
  [/InvalidCertificate|fatal alert/, 'the TLS handshake failed'],
];

/**
 * A TLS failure that retrying will not mend (an untrusted or misnamed server certificate, a
 * client certificate missing or refused), described for the operator; undefined for anything
 * else, such as a server that is not up yet.
 */
export function tlsProblem(err: unknown): string | undefined {
  let text = '';
  for (const e of causeChain(err)) text += ` ${(e as Error).message ?? ''}`;
  for (const [pattern, reason] of TLS_REASONS) {
    const m = pattern.exec(text);
    if (m) return `${reason} (${m[0]}); ${TLS_SETTINGS}`;
  }
  return undefined;
}

/** gRPC codes of a server that is there and refused our credentials. */
const REFUSED_CODES = new Map([
  [16, 'Unauthenticated'],
  [7, 'PermissionDenied'],
]);

/**
 * The server refused our credentials (no token, a token it cannot verify, or one without the
 * permission the call needs): a message naming what to check; undefined for any other error.
 * Retrying cannot mend it.
 */
export function credentialsRefused(err: unknown, address: string): TemporalUnreachableError | undefined {
  for (const e of causeChain(err)) {
    const { code, details, message } = e as { code?: number; details?: string; message?: string };
    // The worker's core reports a refusal only in its message text ("Status { code: PermissionDenied, message: ... }").
    const inText = /code: (PermissionDenied|Unauthenticated), message: "([^"]*)"/.exec(message ?? '');
    if ((typeof code === 'number' && REFUSED_CODES.has(code)) || inText) {
      const why = inText ? `${inText[1]}: ${inText[2]}` : `${REFUSED_CODES.get(code!)}: ${details || message}`;
      return new TemporalUnreachableError(
        `Temporal at ${address} refused the call (${why}): check that TEMPORAL_API_KEY holds a token with the permission it needs (e.g. default:write; \`taskmgr cluster-token\` mints one for the local cluster), and the TLS client certificate if one is asked for (TEMPORAL_TLS_CLIENT_CERT_PATH)`,
      );
    }
  }
  return undefined;
}

/**
 * A connection failure that retrying cannot mend: credentials the server refused, or TLS settings
 * (an untrusted or misnamed certificate, a missing client certificate). A message naming the
 * setting to check; undefined for anything else, such as a server that is not up yet.
 */
export function configurationProblem(err: unknown, address: string): TemporalUnreachableError | undefined {
  const refused = credentialsRefused(err, address);
  if (refused) return refused;
  const problem = tlsProblem(err);
  return problem ? new TemporalUnreachableError(`TLS with Temporal at ${address} failed: ${problem}`) : undefined;
}

/** A Temporal client on the configured connection (see temporalTarget), with a clear error when it cannot connect. */
export async function connectClient(config: Config, addressOverride?: string): Promise<Client> {
  const target = temporalTarget(config, addressOverride);
  const connection = await connecting(target, () => Connection.connect(target.connectionOptions));
  return new Client({ connection, namespace: target.namespace, interceptors: temporalClientInterceptors() });
}

/** Runs a connect call; turns the SDK's "Failed to connect before the deadline" into a message that says where and what to do. */
export async function connecting<T>(target: TemporalTarget, connect: () => Promise<T>): Promise<T> {
  const { address, tls, apiKey } = target.connectionOptions;
  try {
    return await connect();
  } catch (err) {
    const configuration = configurationProblem(err, address);
    if (configuration) throw configuration;
    // The client's gRPC library reports a refused handshake only as a missed deadline: say what else it may be.
    const overTls = tls || apiKey ? ` Over TLS, a refused handshake looks the same: ${TLS_SETTINGS}.` : '';
    throw new TemporalUnreachableError(
      `cannot reach Temporal at ${address} (${(err as Error).message}); is \`npm start\` running, or is TEMPORAL_ADDRESS right?${overTls}`,
    );
  }
}
