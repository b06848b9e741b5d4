/**
 * Finds the Temporal server binary (see go-tools.ts), for the cluster and for the test of TLS
 * served by Temporal itself. Run directly: `tsx src/dev/temporal-server.ts` prints the path.
 */
import { pathToFileURL } from 'node:url';
import { findGoTool, TEMPORAL_SERVER } from './go-tools.ts';

export { SERVER_VERSION } from './go-tools.ts';

/** Returns the path of the Temporal server binary, building it (minutes, once) if it must. */
export const findTemporalServer = (opts: { log?: (msg: string) => void } = {}): string => findGoTool(TEMPORAL_SERVER, opts);

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    console.log(findTemporalServer());
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
