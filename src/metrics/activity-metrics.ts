/** Metrics recorded from inside an activity (a task module, say), through the activity's meter. */
import { Context } from '@temporalio/activity';

/** Adds to a counter `name` (exported as `<name>_total`); outside an activity (a module's unit test) it records nothing. */
export function countInActivity(name: string, value: number, description: string, labels: Record<string, string> = {}): void {
  let context: Context;
  try {
    context = Context.current();
  } catch {
    return;
  }
  context.metricMeter.createCounter(name, undefined, description).add(value, labels);
}
