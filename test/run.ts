/**
 * `npm test`: starts the real servers the tests use (test/servers.ts), runs every test file with
 * node's test runner, and stops the servers again.
 * - Temporal: the Temporal CLI dev server (found or built by src/dev/temporal-cli.ts), in memory,
 *   on a free loopback port, with the project's search attributes.
 * - PostgreSQL: TEST_DATABASE_URL (an admin URL; each test file creates and drops its own
 *   database), else the local server at 127.0.0.1:5432 if it answers, else an embedded one.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startTestServers, type TestServers } from './servers.ts';

let servers: TestServers | undefined;

/** Files that do not apply on the cluster (`npm run test:cluster`), and why. */
const NOT_ON_CLUSTER: Record<string, string> = {
  'test/integration/start.test.ts': '`npm start` starts its own dev server and embedded PostgreSQL',
  'test/integration/tls-server.test.ts': 'runs its own Temporal server with mTLS',
};

/**
 * Test files run side by side: most of their time is spent waiting on timers, the server and
 * PostgreSQL, so four at once use the two cores better than two. The cluster's own processes
 * take a core already, so its runs keep two.
 */
/**
 * Files that spend most of their time waiting (on the server's background deletion of flushed
 * tasks, on a second Temporal server, on processes they start) begin first, so that their waits
 * overlap the other files instead of ending the run.
 */
const WAITING_FILES = [
  'task-flush.test.ts',
  'http-api.test.ts',
  'cli.test.ts',
  'tls.test.ts',
  'tls-server.test.ts',
  'get-task.test.ts',
  'page-watchers.test.ts',
];
const startsFirst = (file: string) => (WAITING_FILES.includes(path.basename(file)) ? 1 : 0);
// A renamed file would silently lose its place: say so instead.
for (const f of WAITING_FILES) {
  if (!fs.existsSync(path.join('test', 'integration', f))) throw new Error(`test/run.ts: WAITING_FILES names ${f}, which is not in test/integration`);
}

function defaultConcurrency(kind: TestServers['temporalKind']): number {
  return kind === 'cluster' ? 2 : 4;
}

async function main(): Promise<number> {
  servers = await startTestServers();
  console.log(
    `test servers: Temporal ${servers.temporalKind === 'cluster' ? 'cluster' : 'dev server'} ${servers.temporalAddress}, PostgreSQL ${servers.databaseUrl.replace(/:[^:@/]*@/, ':***@')}`,
  );
  // Files or folders; by default the unit and integration tests (`npm run test:faults` passes test/faults).
  // Options for node's test runner (e.g. --test-name-pattern=...) pass through.
  const options = process.argv.slice(2).filter((a) => a.startsWith('--'));
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  let testFiles = (args.length ? args : ['test/unit', 'test/integration']).flatMap((p) =>
    fs.statSync(p).isDirectory()
      ? fs
          .readdirSync(p)
          .filter((f) => f.endsWith('.test.ts'))
          .map((f) => path.join(p, f))
      : [p],
  );
  testFiles.sort((a, b) => startsFirst(b) - startsFirst(a));
  if (servers.temporalKind === 'cluster') {
    for (const f of testFiles.filter((f) => NOT_ON_CLUSTER[f])) console.log(`not on the cluster: ${f} (${NOT_ON_CLUSTER[f]})`);
    testFiles = testFiles.filter((f) => !NOT_ON_CLUSTER[f]);
  }
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--test',
      '--test-reporter=spec',
      ...(options.some((o) => o.startsWith('--test-concurrency')) ? [] : [`--test-concurrency=${defaultConcurrency(servers.temporalKind)}`]),
      ...options,
      ...testFiles,
    ],
    {
      stdio: 'inherit',
      env: {
        ...process.env,
        TEST_TEMPORAL_ADDRESS: servers.temporalAddress,
        TEST_TEMPORAL_HTTP_URL: servers.temporalHttpUrl,
        TEST_TEMPORAL_KIND: servers.temporalKind,
        TEST_DATABASE_URL: servers.databaseUrl,
        TEMPORAL_CLI: servers.cliPath,
        TEMPORAL_SERVER: servers.serverPath,
      },
    },
  );
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)));
}

main()
  .then(async (code) => {
    await servers?.stop();
    process.exit(code);
  })
  .catch(async (err: Error) => {
    console.error(`npm test could not start its servers: ${err.message}`);
    await servers?.stop();
    process.exit(1);
  });
