/**
 * A start with a new, partly random workflow id answered "already started": either our own start,
 * retried by the client after the server had taken it (a history host failing over answers late),
 * or, very rarely, another execution that drew the same id. The first event's input tells them apart.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';

export async function startedWithInput(client: Client, workflowId: string, input: unknown): Promise<boolean> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return payload !== undefined && JSON.stringify(defaultPayloadConverter.fromPayload(payload)) === JSON.stringify(JSON.parse(JSON.stringify(input)));
}
