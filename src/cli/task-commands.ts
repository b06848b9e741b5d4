/** `taskmgr` task commands: add, list, show, cancel, reschedule, retry, flush, methods. */
import { readFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { loadConfig, type Config } from '../config.ts';
import { createPool, type Pool } from '../db/pool.ts';
import { runningDatabaseUrl } from './database.ts';
import { printable, terminalSafe } from './common.ts';
import { TaskClient, type TaskSummary } from '../client/task-client.ts';
import { noWorkerMessage } from '../client/worker-wait.ts';
import { formatStatus, systemStatus } from '../taskmgr/status.ts';
import { TASK_STATUSES, type TaskStatus } from '../shared.ts';
import { assertAvailable, listTaskFiles } from '../taskmgr/discovery.ts';
import { TaskInputError, validateTaskInput, validateTaskKeys } from '../taskmgr/input.ts';
import { formatDuration, parseDuration } from '../taskmgr/duration.ts';
import type { TaskInfo } from '../taskmgr/info.ts';
import type { TaskProgress } from '../taskmgr/types.ts';

async function withTasks<T>(fn: (tasks: TaskClient, pool: Pool | undefined, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  // The database, where it runs, holds every task's keys (key searches, large key sets).
  const databaseUrl = runningDatabaseUrl(config);
  const pool = databaseUrl ? createPool(databaseUrl, { max: 2 }) : undefined;
  const tasks = await TaskClient.connect(config, undefined, { pool });
  try {
    return await fn(tasks, pool, config);
  } finally {
    await tasks.close();
    await pool?.end();
  }
}

// Task text (log lines, errors, outputs) comes from task code and registry data: no control characters reach the terminal.
const print = (json: boolean | undefined, value: unknown, text: () => string) => console.log(json ? JSON.stringify(value, null, 2) : terminalSafe(text()));

/**
 * The keys of `add`: -k's list, or --keys-file's lines (an argument holds at most 128 KB on Linux;
 * 10,000 keys of 255 characters need a file or standard input).
 */
async function keysOption(opts: { keys?: string; keysFile?: string }): Promise<string[] | undefined> {
  if (opts.keys !== undefined && opts.keysFile !== undefined) throw new TaskInputError('registryObjectKeys', 'give either --keys or --keys-file, not both');
  if (opts.keysFile === undefined)
    return opts.keys
      ?.split(',')
      .map((k) => k.trim())
      .filter(Boolean);
  const text =
    opts.keysFile === '-'
      ? await readStdin()
      : await readFile(opts.keysFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
          throw new TaskInputError('registryObjectKeys', `--keys-file ${JSON.stringify(opts.keysFile)} cannot be read (${err.code ?? err.message})`);
        });
  return text
    .split(/\r?\n/)
    .map((k) => k.trim())
    .filter(Boolean);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Columns padded to their widest cell. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (c ?? '').padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const ago = (d?: Date | string) => (d ? `${formatDuration(Math.max(0, Date.now() - new Date(d).getTime()))} ago` : '');

/** `[#########...........]  45%  450/1000  message` */
export function progressBar(p: TaskProgress | undefined, width = 30): string {
  if (!p) return '[waiting for progress]';
  if (!p.total) return `${p.done} done${p.message ? `  ${p.message}` : ''}`;
  const ratio = Math.min(1, p.done / p.total);
  const filled = Math.round(ratio * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(ratio * 100)).padStart(3)}%  ${p.done}/${p.total}${p.message ? `  ${p.message}` : ''}`;
}

function describeTask(t: TaskInfo): string {
  const rows: [string, string | undefined][] = [
    ['task', t.taskId],
    ['method', t.method],
    ['status', t.status + (t.waitingFor?.length ? ` (waiting for ${t.waitingFor.join(' and ')})` : '')],
    ['data source', t.input.dataSourceKey],
    [
      'record keys',
      t.input.registryObjectKeys?.length
        ? `${t.input.registryObjectKeys.slice(0, 5).join(', ')}${t.input.registryObjectKeys.length > 5 ? ` (+${t.input.registryObjectKeys.length - 5} more)` : ''}`
        : undefined,
    ],
    ['log message', t.input.logMessage],
    ['prerequisite', t.prerequisiteTaskId],
    ['dependants', t.dependants.join(', ') || undefined],
    ['added', t.addedAt],
    ['scheduled for', t.scheduledFor],
    ['started', t.startedAt],
    ['completed', t.completedAt],
    ['duration', t.durationMs !== undefined ? formatDuration(t.durationMs) : undefined],
    ['attempts', t.attempts !== undefined ? String(t.attempts) : undefined],
    ['recurs every', t.input.recurEvery ? `${t.input.recurEvery} (run ${(t.iteration ?? 0) + 1})` : undefined],
    ['merged into', t.deduplicatedInto],
    ['error', t.error],
    ['output', t.output !== undefined ? JSON.stringify(t.output) : undefined],
  ];
  const lines = rows.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k.padEnd(14)}${v}`);
  if (t.progress) lines.push(`${'progress'.padEnd(14)}${progressBar(t.progress)}`);
  if (t.recentRuns?.length)
    lines.push('recent runs:', ...t.recentRuns.slice(0, 5).map((r) => `  #${r.iteration + 1} ${r.status} ${r.completedAt}${r.error ? `  ${r.error}` : ''}`));
  if (t.logs.length) lines.push('log:', ...t.logs.map((l) => `  ${l.at} ${l.level.toUpperCase().padEnd(5)} ${l.message}`));
  return lines.join('\n');
}

const statusOption = (value: string, previous: TaskStatus[] = []): TaskStatus[] => {
  const s = value.toUpperCase();
  if (!(TASK_STATUSES as readonly string[]).includes(s))
    throw new InvalidArgumentError(`status ${JSON.stringify(value)} is not one of ${TASK_STATUSES.join(', ')}`);
  return [...previous, s as TaskStatus];
};
const dateOption = (value: string): Date => {
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a date (e.g. 2026-11-29T09:00:00Z)`);
  return d;
};

export function addTaskCommands(program: Command): void {
  addMethodsCommand(program);
  addAddCommand(program);
  addStatusCommand(program);
  addListCommand(program);
  addShowCommand(program);
  addCancelCommand(program);
  addRescheduleCommand(program);
  addRetryCommand(program);
  addFlushCommand(program);
}

function addMethodsCommand(program: Command) {
  program
    .command('methods')
    .description('list the task methods that can be added (and the disabled ones)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const files = listTaskFiles();
      print(opts.json, files, () => [`available: ${files.available.join(', ')}`, `disabled:  ${files.disabled.join(', ') || '(none)'}`].join('\n'));
    });
}

function addAddCommand(program: Command) {
  program
    .command('add')
    .description('add a task (as addNewTask): prints its id, or the id of the WAITING task it was merged into')
    .argument('<method>', 'task method, e.g. GENERATE_CACHE (see `taskmgr methods`)')
    .option('-d, --data-source <key>', 'data source key')
    .option('-k, --keys <keys>', 'comma-separated registry object keys')
    .option('--keys-file <path>', 'registry object keys, one per line (- reads standard input): for many keys, or keys with commas')
    .option('-m, --log-message <text>', 'log message')
    .option('-p, --prerequisite <taskId>', 'run after this task completes')
    .option('-s, --scheduled-for <when>', 'a delay ("15 seconds", "1 hour", "7 days") or an ISO time')
    .option('-r, --recur-every <interval>', 'run again this long after each run ("1 hour")')
    .option('--json', 'print JSON')
    .action(
      async (
        method: string,
        opts: {
          dataSource?: string;
          keys?: string;
          keysFile?: string;
          logMessage?: string;
          prerequisite?: string;
          scheduledFor?: string;
          recurEvery?: string;
          json?: boolean;
        },
      ) => {
        const input = {
          method,
          dataSourceKey: opts.dataSource,
          registryObjectKeys: await keysOption(opts),
          logMessage: opts.logMessage,
          prerequisiteTaskId: opts.prerequisite,
          scheduledFor: opts.scheduledFor,
          recurEvery: opts.recurEvery,
        };
        // Refuse bad input before connecting anywhere.
        assertAvailable(method);
        // The keys on their own: large key sets go to PostgreSQL (TaskClient), not in the workflow input.
        validateTaskInput({ ...input, registryObjectKeys: undefined }, Date.now());
        if (input.registryObjectKeys) validateTaskKeys(input.registryObjectKeys);
        await withTasks(async (tasks) => {
          const admission = await tasks.addTask(input);
          const id = admission.deduplicatedInto ?? admission.taskId;
          if (admission.admissionPending) console.error(`taskmgr: ${noWorkerMessage('added', tasks.taskQueue)}`);
          print(
            opts.json,
            { taskId: id, deduplicated: Boolean(admission.deduplicatedInto), ...(admission.admissionPending ? { admissionPending: true } : {}) },
            () => (admission.deduplicatedInto ? `${id} (merged into this WAITING task)` : id),
          );
        });
      },
    );
}

function addStatusCommand(program: Command) {
  program
    .command('status')
    .description(
      'the system at a glance: workers polling, tasks by status, runs of the last 24 hours, follow-ups queued per data source, records in quarantine, alerts',
    )
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withTasks(async (tasks, pool, config) => {
        const status = await systemStatus(tasks, pool, config.prometheusUrl);
        print(opts.json, status, () => formatStatus(status, Boolean(pool)));
      });
    });
}

function addListCommand(program: Command) {
  program
    .command('list')
    .description('list tasks, newest first')
    .option('-s, --status <status>', `filter by status (${TASK_STATUSES.join(', ')}); repeatable`, statusOption)
    .option('-m, --method <method>', 'filter by method')
    .option('-d, --data-source <key>', 'filter by data source')
    .option('--from <date>', 'added at or after', dateOption)
    .option('--to <date>', 'added before', dateOption)
    .option('-n, --limit <n>', 'tasks per page', (v) => Number(v), 50)
    .option('--page <token>', 'the page token printed by the previous page')
    .option('--json', 'print JSON')
    .action(
      async (opts: { status?: TaskStatus[]; method?: string; dataSource?: string; from?: Date; to?: Date; limit: number; page?: string; json?: boolean }) => {
        await withTasks(async (tasks) => {
          const page = await tasks.listTasks({
            status: opts.status,
            method: opts.method,
            dataSourceKey: opts.dataSource,
            from: opts.from,
            to: opts.to,
            pageSize: opts.limit,
            pageToken: opts.page,
          });
          print(opts.json, page, () => {
            const rows = page.tasks.map((t: TaskSummary) => [
              t.taskId,
              t.method ?? '',
              t.status ?? t.temporalStatus,
              t.dataSourceKey ?? '',
              ago(t.addedAt),
              t.closedAt ? ago(t.closedAt) : '',
            ]);
            const out = table(['TASK', 'METHOD', 'STATUS', 'DATA SOURCE', 'ADDED', 'ENDED'], rows);
            return page.nextPageToken ? `${out}\nmore: taskmgr list --page ${page.nextPageToken}` : out;
          });
        });
      },
    );
}

function addShowCommand(program: Command) {
  program
    .command('show')
    .description("a task's inputs, status, times, output, error and log")
    .argument('<taskId>')
    .option('-f, --follow', 'redraw until the task ends, with a progress bar while it runs')
    .option('--json', 'print JSON')
    .action(async (taskId: string, opts: { follow?: boolean; json?: boolean }) => {
      await withTasks(async (tasks) => {
        let t = await tasks.getTask(taskId);
        if (!opts.follow || opts.json) return print(opts.json, t, () => describeTask(t));
        const tty = process.stdout.isTTY;
        while (t.status === 'WAITING' || t.status === 'STARTED') {
          const line = `${t.status.padEnd(8)} ${t.status === 'STARTED' ? progressBar(t.progress) : t.waitingFor?.length ? `waiting for ${t.waitingFor.join(' and ')}${t.scheduledFor ? ` (${t.scheduledFor})` : ''}` : ''}`;
          process.stdout.write(tty ? `\r\x1b[2K${printable(line)}` : `${printable(line)}\n`);
          await new Promise((r) => setTimeout(r, 1000));
          t = await tasks.getTask(taskId);
        }
        if (tty) process.stdout.write('\r\x1b[2K');
        console.log(terminalSafe(describeTask(t)));
        if (t.status === 'FAILED') process.exitCode = 1;
      });
    });
}

function addCancelCommand(program: Command) {
  program
    .command('cancel')
    .description('cancel a WAITING or STARTED task (stops a recurring one)')
    .argument('<taskId>')
    .action(async (taskId: string) =>
      withTasks(async (tasks) => {
        await tasks.cancelTask(taskId);
        console.log(`cancel requested for ${taskId}`);
      }),
    );
}

function addRescheduleCommand(program: Command) {
  program
    .command('reschedule')
    .description('move a WAITING task: a delay ("15 minutes") or an ISO time')
    .argument('<taskId>')
    .argument('<when>')
    .action(async (taskId: string, when: string) =>
      withTasks(async (tasks) => {
        const t = await tasks.rescheduleTask(taskId, when);
        console.log(`${taskId} now scheduled for ${t.scheduledFor}`);
      }),
    );
}

function addRetryCommand(program: Command) {
  program
    .command('retry')
    .description('add a FAILED or CANCELLED task again with the same inputs; prints the new id')
    .argument('<taskId>')
    .action(async (taskId: string) => withTasks(async (tasks) => console.log(await tasks.retryTask(taskId))));
}

function addFlushCommand(program: Command) {
  program
    .command('flush')
    .description('delete closed tasks: completed ones older than --older-than (default 24 hours), or --failed ones')
    .option('--older-than <duration>', 'age of completed tasks to delete', '24 hours')
    .option('--failed', 'delete the failed tasks instead')
    .action(async (opts: { olderThan: string; failed?: boolean }) => {
      const age = parseDuration(opts.olderThan, '--older-than');
      await withTasks(async (tasks) => {
        const n = await tasks.flushTasks(opts.failed ? { failed: true } : { completedBefore: new Date(Date.now() - age) });
        console.log(`deleted ${n} ${opts.failed ? 'failed' : 'completed'} tasks`);
      });
    });
}
