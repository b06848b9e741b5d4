/** The registry's HOURLY_REGISTRY_MAINTENANCE loop, started by `taskmgr start` and `taskmgr worker` (no page server needed). */
import type { Config } from '../config.ts';
import { maintenanceTaskId, type TaskClient } from '../client/task-client.ts';
import type { Logger } from '../log.ts';

/** The HOURLY_REGISTRY_MAINTENANCE loop runs once per registry (task queue): start it unless it runs. */
export async function ensureMaintenanceTask(tasks: TaskClient, config: Config, logger: Logger) {
  const { taskId } = await tasks.addTask({ method: 'HOURLY_REGISTRY_MAINTENANCE', recurEvery: config.maintenanceEvery }, maintenanceTaskId(tasks.taskQueue), {
    restartIfClosed: true,
  });
  logger.info({ taskId, every: config.maintenanceEvery }, 'maintenance task scheduled');
}
