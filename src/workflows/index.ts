/** Every workflow type the worker registers. Deterministic code only below this folder. */
export { deleteRecord } from './deleteRecord.ts';
export { registryOperation } from './registryOperation.ts';
export { registryTask } from './registryTask.ts';
export { coalesceFollowUps } from './coalesce.ts';
