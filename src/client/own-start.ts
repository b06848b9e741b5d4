/**
 * A start with a new, partly random workflow id answered "already started": either our own start,
 * retried by the client after the server had taken it (a history host failing over answers late),
 * or, very rarely, another execution that drew the same id. The first event's input tells them apart.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';

/** The first argument an execution was started with, from its first history event; undefined when it had none. */
export async function startArgument(client: Client, workflowId: string, runId?: string): Promise<unknown> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return payload ? defaultPayloadConverter.fromPayload(payload) : undefined;
}

export async function startedWithInput(client: Client, workflowId: string, input: unknown): Promise<boolean> {
  const started = await startArgument(client, workflowId);
  return started !== undefined && JSON.stringify(started) === JSON.stringify(JSON.parse(JSON.stringify(input)));
}
