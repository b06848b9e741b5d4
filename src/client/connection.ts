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
    throw new TemporalUnreachableError(`cannot reach Temporal at ${address} (${(err as Error).message}); is \`npm start\` running, or is TEMPORAL_ADDRESS right?`);
  }
}
