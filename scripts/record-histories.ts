/**
 * `npm run record-histories`: runs each workflow type on the real servers and saves its event
 * history under test/histories/. The replay test replays them against the current workflow code,
 * so a change that would break running workflows fails CI. Re-record only for a deliberate,
 * patched change (see the README's "Changing a workflow safely").
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startTestServers } from '../test/servers.ts';

const OUT = path.join(import.meta.dirname, '..', 'test', 'histories');

const servers = await startTestServers();
process.env.TEST_TEMPORAL_ADDRESS = servers.temporalAddress;
process.env.TEST_DATABASE_URL = servers.databaseUrl;
const { createTestDatabase, startTestWorker, testClient } = await import('../test/helpers.ts');
const { seedRegistry } = await import('../src/registry/seed.ts');

const db = await createTestDatabase();
const worker = await startTestWorker(db.pool);
const client = await testClient(worker.taskQueue, { batchSize: 10, concurrency: 2 });
try {
  const seeded = await seedRegistry(db.pool, { records: 300, dataSources: 2, hubs: 1, hubSize: 35, seed: 3 });
  fs.mkdirSync(OUT, { recursive: true });
  const save = async (name: string, workflowId: string) => {
    // The temporal CLI's JSON is the format Worker.runReplayHistory reads.
    const json = execFileSync(servers.cliPath, ['workflow', 'show', '--address', servers.temporalAddress, '--workflow-id', workflowId, '--output', 'json']);
    const history = JSON.parse(json.toString());
    fs.writeFileSync(path.join(OUT, `${name}.json`), `${JSON.stringify(history, null, 1)}\n`);
    console.log(`recorded ${name} (${history.events.length} events)`);
  };

  const hub = seeded.hubs[0]!.key;
  const outcome = await client.deleteRecord(hub);
  await client.awaitDeletion(hub);
  await save('deleteRecord-hub', outcome.workflowId);

  await client.deleteRecord('no/such/record').catch(() => undefined);
  await client.deletionHandle('no/such/record').result().catch(() => undefined);
  await save('deleteRecord-not-found', 'delete-record:no/such/record');
} finally {
  await client.close();
  await worker.stop();
  await db.drop();
  await servers.stop();
}
