/** Temporal connection settings: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_* or a
 *  TOML profile, read by @temporalio/envconfig so TLS, mTLS and API keys work as in the temporal CLI. */
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import type { Config } from '../config.ts';

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

export class TemporalUnreachableError extends Error {
  override name = 'TemporalUnreachable';
}

/** Runs a connect call; turns the SDK's "Failed to connect before the deadline" into a message that says where and what to do. */
export async function connecting<T>(address: string, connect: () => Promise<T>): Promise<T> {
  try {
    return await connect();
  } catch (err) {
    // The SDK wraps the server's answer; an UNAUTHENTICATED (16) or PERMISSION_DENIED (7) one means
    // the server is there and refused our credentials, which deserves its own message.
    for (let e: unknown = err; e && typeof e === 'object'; e = (e as { cause?: unknown }).cause) {
      const { code, details } = e as { code?: number; details?: string };
      if (code === 16 || code === 7) {
        throw new TemporalUnreachableError(`Temporal at ${address} refused the connection's credentials (${details ?? 'unauthenticated'}); check TEMPORAL_API_KEY and the TLS client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH)`);
      }
    }
    throw new TemporalUnreachableError(`cannot reach Temporal at ${address} (${(err as Error).message}); is \`npm start\` running, or is TEMPORAL_ADDRESS right?`);
  }
}
