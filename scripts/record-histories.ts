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
const { createTestDatabase, deleteOneWhileTheOthersRoundPlans, recordsUnrelatedTo, recordsWithRelations, relatedIdsOfRecord, startTestWorker, testClient } =
  await import('../test/helpers.ts');
const { seedRegistry } = await import('../src/registry/seed.ts');
const { TaskClient } = await import('../src/client/task-client.ts');
const { coalescerWorkflowId } = await import('../src/client/workflow-ids.ts');

const db = await createTestDatabase();
// Short waits: the recorded wait continues as new within seconds.
const worker = await startTestWorker(db.pool, undefined, { TASK_PREREQUISITE_RECHECK: '100 milliseconds', TASK_WAIT_HISTORY_LIMIT: '50' });
const client = await testClient(worker.taskQueue, { batchSize: 10, concurrency: 2 });
try {
  const seeded = await seedRegistry(db.pool, { records: 300, dataSources: 3, hubs: 1, hubSize: 35, seed: 3 });
  fs.mkdirSync(OUT, { recursive: true });
  const save = async (name: string, workflowId: string, runId?: string) => {
    // The temporal CLI's JSON is the format Worker.runReplayHistory reads.
    const json = execFileSync(servers.cliPath, [
      'workflow',
      'show',
      '--address',
      servers.temporalAddress,
      '--workflow-id',
      workflowId,
      ...(runId ? ['--run-id', runId] : []),
      '--output',
      'json',
    ]);
    const history = JSON.parse(json.toString());
    fs.writeFileSync(path.join(OUT, `${name}.json`), `${JSON.stringify(history, null, 1)}\n`);
    console.log(`recorded ${name} (${history.events.length} events)`);
  };

  const hub = seeded.hubs[0]!.key;
  const outcome = await client.deleteRecord(hub);
  await client.awaitDeletion(hub);
  await save('deleteRecord-hub', outcome.workflowId);

  await client.deleteRecord('no/such/record').catch(() => undefined);
  await client
    .deletionHandle('no/such/record')
    .result()
    .catch(() => undefined);
  await save('deleteRecord-not-found', client.deletionHandle('no/such/record').workflowId);

  // coalesceFollowUps: a burst of deletions in one data source, then the coalescer's history so far.
  const burst = (
    await db.pool.query<{ key: string }>(
      "SELECT key FROM registry_objects WHERE key NOT LIKE '%/hub-%' AND data_source_id = (SELECT data_source_id FROM registry_objects WHERE key = $1) ORDER BY key LIMIT 5",
      [seeded.hubs[0]!.key],
    )
  ).rows.map((r) => r.key);
  await Promise.all(burst.map((k) => client.deleteRecord(k)));
  await Promise.all(burst.map((k) => client.awaitDeletion(k)));
  await save('coalesceFollowUps-burst', coalescerWorkflowId(outcome.dataSourceKey!, worker.taskQueue));

  // coalesceFollowUps: a deletion signalled while the round of another was planned, claimed by that
  // plan; the signal seen after the round, and seen at a workflow task heartbeat while the plan waited.
  const [afterRound, whilePlanning] = seeded.dataSources.filter((d) => d !== outcome.dataSourceKey);
  const pairs: string[] = [];
  for (const [dataSourceKey, deliveredWhilePlanning, name] of [
    [afterRound!, false, 'coalesceFollowUps-signal-after-round'],
    [whilePlanning!, true, 'coalesceFollowUps-signal-while-planning'],
  ] as const) {
    const [first] = await recordsWithRelations(db.pool, dataSourceKey, 1);
    const [second] = await recordsUnrelatedTo(db.pool, dataSourceKey, first!, await relatedIdsOfRecord(db.pool, first!), 1);
    if (!first || !second) throw new Error(`no two unrelated records with relations in ${dataSourceKey}`);
    const pair = [first, second] as const;
    const where = { dataSourceKey, taskQueue: worker.taskQueue, deliveredWhilePlanning };
    const { firstDeletion, secondDeletion, coalescer } = await deleteOneWhileTheOthersRoundPlans(client, db.pool, where, pair[0], pair[1]);
    await client.awaitDeletion(pair[0], firstDeletion.runId);
    await client.awaitDeletion(pair[1], secondDeletion.runId);
    // Past a quiet period's maximum: a round the late signal started (before the patch) is in the history.
    await new Promise((r) => setTimeout(r, 4000));
    await save(name, coalescer.workflowId);
    pairs.push(...pair);
  }

  // Two concurrent deletes of one key in one run, its deletes one after the other. The second
  // caller's update may come after the run closed (a run of its own): then another key is tried.
  const candidates = await db.pool.query<{ key: string }>('SELECT key FROM registry_objects WHERE NOT (key = ANY($1)) ORDER BY key LIMIT 20', [
    [...burst, ...pairs, ...seeded.hubs.map((h) => h.key)],
  ]);
  let recordedTwice = false;
  for (const { key } of candidates.rows) {
    const both = await Promise.allSettled([client.deleteRecord(key), client.deleteRecord(key)]);
    const winner = both.find((r) => r.status === 'fulfilled')?.value;
    if (!winner) continue;
    await client.awaitDeletion(key, winner.runId);
    const history = await client.deletionHandle(key, winner.runId).fetchHistory();
    const updates = history.events!.filter((e) => e.workflowExecutionUpdateCompletedEventAttributes).length;
    if (updates < 2) continue;
    await save('deleteRecord-concurrent', winner.workflowId, winner.runId);
    recordedTwice = true;
    break;
  }
  if (!recordedTwice) throw new Error(`no two concurrent deletes of ${candidates.rows.length} keys met in one run`);

  // registryOperation: a status change and a refused one.
  const rec = (await db.pool.query<{ key: string }>("SELECT key FROM registry_objects WHERE status = 'PUBLISHED' ORDER BY id LIMIT 1")).rows[0]!.key;
  const changed = await client.changeStatus(rec, 'DRAFT');
  await client.awaitOperation(changed.workflowId);
  await save('registryOperation-status-change', changed.workflowId);
  const refused = await client.changeStatus(rec, 'PUBLISHED').catch(() => undefined);
  if (refused) throw new Error('expected DRAFT -> PUBLISHED to be refused');
  for await (const wf of client.client.workflow.list({ query: `WorkflowType = 'registryOperation' AND ExecutionStatus = 'Failed'` })) {
    await save('registryOperation-refused', wf.workflowId);
    break;
  }

  // registryTask: a completed task, an unknown method, a merged add, a cancelled wait, a
  // prerequisite chain, a failed prerequisite, and a recurring task's continue-as-new.
  const tasks = new TaskClient(client.client, worker.taskQueue, { pool: db.pool });
  const settle = (id: string) =>
    client.client.workflow
      .getHandle(id)
      .result()
      .catch(() => undefined);
  const ds = seeded.dataSources[0]!;
  const completed = await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: ds, logMessage: 'recorded' });
  await settle(completed);
  await save('registryTask-completed', completed);

  await client.client.workflow.start('registryTask', { taskQueue: worker.taskQueue, workflowId: 'task:unknown-method', args: [{ method: 'NO_SUCH_TASK' }] });
  await settle('task:unknown-method');
  await save('registryTask-unknown-method', 'task:unknown-method');

  const waiting = await tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: ds, scheduledFor: '1 hour', registryObjectKeys: [seeded.hubs[0]!.key] });
  // Without a pool the client cannot merge by itself: the add starts an execution that merges.
  const merged = await new TaskClient(client.client, worker.taskQueue).addTask({
    method: 'INDEX_RECORDS',
    dataSourceKey: ds,
    scheduledFor: '1 hour',
    registryObjectKeys: [seeded.hubs[0]!.key],
  });
  if (!merged.deduplicatedInto) throw new Error('expected the covered add to merge');
  await settle(merged.taskId);
  await save('registryTask-merged', merged.taskId);
  const own = await tasks.addTask({ method: 'INDEX_RECORDS', dataSourceKey: ds, registryObjectKeys: ['another/key'] });
  await settle(own.taskId);
  await save('registryTask-not-covered', own.taskId);
  await tasks.rescheduleTask(waiting, '30 minutes');
  await tasks.cancelTask(waiting);
  await settle(waiting);
  await save('registryTask-cancelled', waiting);

  const first = await tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds });
  const second = await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: ds, prerequisiteTaskId: first });
  await settle(second);
  await save('registryTask-prerequisite-completed', second);
  await save('registryTask-with-dependant', first);

  const failing = await tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: 'no-such-source' });
  const blocked = await tasks.addNewTask('INDEX_RECORDS', { dataSourceKey: ds, prerequisiteTaskId: failing });
  await settle(blocked);
  await save('registryTask-prerequisite-failed', blocked);

  // A dependant whose wait outlasts the history limit: it continues as new.
  const later = await tasks.addNewTask('RUN_QUALITY_CHECK', { dataSourceKey: ds, scheduledFor: '1 hour' });
  const patient = await tasks.addNewTask('GENERATE_CACHE', { dataSourceKey: ds, prerequisiteTaskId: later });
  await new Promise((r) => setTimeout(r, 4000));
  const firstRun = (await client.client.workflow.getHandle(patient).describe()).raw.workflowExecutionInfo!.firstRunId!;
  await tasks.cancelTask(later);
  await settle(patient);
  await save('registryTask-wait-continued', patient, firstRun);

  const recurring = await tasks.addNewTask('INDEX_RECORDS', { registryObjectKeys: [seeded.hubs[0]!.key], recurEvery: '200 milliseconds' });
  await new Promise((r) => setTimeout(r, 1500));
  await tasks.cancelTask(recurring);
  await settle(recurring);
  const { raw } = await client.client.workflow.getHandle(recurring).describe();
  await save('registryTask-recurring-iteration', recurring, raw.workflowExecutionInfo!.firstRunId!);
  await save('registryTask-recurring-cancelled', recurring);
} finally {
  await client.close();
  await worker.stop();
  await db.drop();
  await servers.stop();
}
