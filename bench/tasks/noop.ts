/** A task that does nothing: what the task manager itself costs per task. */
import { defineTask } from '../../src/taskmgr/types.ts';

export default defineTask({
  description: 'does nothing (benchmarks)',
  async run() {
    return null;
  },
});
