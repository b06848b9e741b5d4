/**
 * An update-with-start of a new, partly random id that the client retried after the server had
 * taken the first attempt answers "already started" (seen when a history host failed over in
 * test/cluster/history-failover.test.ts). The clients tell their own start from another
 * execution by its first event's input.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { startedWithInput } from '../../src/client/own-start.ts';
import { temporalAddress, uniqueName } from '../helpers.ts';

describe('telling our own start from another execution', () => {
  let client: Client;
  before(async () => {
    client = new Client({ connection: await Connection.connect({ address: temporalAddress() }) });
  });
  after(async () => client?.connection.close());

  it('the same input is ours; any other input, or none, is not', async () => {
    const workflowId = uniqueName('task:INDEX_RECORDS:all');
    const input = { method: 'INDEX_RECORDS', registryObjectKeys: ['a/b', 'c/d'], logMessage: undefined };
    // No worker polls this queue: the execution only has to exist.
    const handle = await client.workflow.start('registryTask', { taskQueue: uniqueName('nobody'), workflowId, args: [input] });
    try {
      assert.equal(await startedWithInput(client, workflowId, input), true, 'undefined fields drop out as in the payload');
      assert.equal(await startedWithInput(client, workflowId, { ...input, registryObjectKeys: ['a/b'] }), false);
      assert.equal(await startedWithInput(client, workflowId, { method: 'GENERATE_CACHE' }), false);
    } finally {
      await handle.terminate();
    }
  });
});
