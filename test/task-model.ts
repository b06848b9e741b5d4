/**
 * A reference model of the task manager's semantics, for the model-based test: what each
 * operation should do to every task's observable state (statuses, schedule, prerequisites, the
 * merge rule, recurrence, cancel, reschedule, retry, retention). Pure: no I/O.
 */

export const METHODS = ['GENERATE_CACHE', 'INDEX_RECORDS'] as const;
export const KEYS = ['k/1', 'k/2', 'k/3'] as const;

export type Step =
  | { kind: 'add'; method: number; ds: number; keys: number; far: boolean; prereq: number | null; recur: boolean }
  | { kind: 'cancel'; task: number }
  | { kind: 'release'; task: number }
  | { kind: 'retry'; task: number }
  | { kind: 'flush' }
  | { kind: 'restart' };

export type ModelStatus = 'WAITING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

export interface ModelTask {
  method: string;
  ds: number;
  /** null: no keys (the whole data source). */
  keys: string[] | null;
  /** Scheduled an hour ahead (not due during the test). */
  far: boolean;
  /** When a far task starts (epoch ms). */
  at: number;
  prereq: number | null;
  recur: boolean;
  status: ModelStatus;
  gone: boolean;
  /** Holds the WAITING slot of (method, data source). */
  claimed: boolean;
  /** Runs a recurring task has finished: WAITING before its first run and between two runs look alike otherwise. */
  runs: number;
}

/** What an add did: a new task (its index), a merge into an existing one, or a refusal. */
export type AddOutcome = { created: number } | { mergedInto: number } | { refused: string };

const HOUR = 3_600_000;
/** As the workflow's MERGE_WINDOW_MS. */
const MERGE_WINDOW_MS = 60_000;

export const keysOf = (mask: number): string[] | null => (mask === 0 ? null : KEYS.filter((_, i) => mask & (1 << i)));

export class TaskModel {
  readonly tasks: ModelTask[] = [];

  /** An add as TaskClient.addNewTask makes it (retry makes one too, without the schedule). */
  add(spec: { method: string; ds: number; keys: string[] | null; far: boolean; prereq: number | null; recur: boolean }, now = Date.now()): AddOutcome {
    const a = { ...spec, at: spec.far ? now + HOUR : now };
    if (a.prereq !== null && this.tasks[a.prereq]!.gone) return { refused: 'prerequisite does not exist' };
    if (!a.recur) {
      const holder = this.tasks.findIndex((t) => t.claimed && t.method === a.method && t.ds === a.ds);
      if (holder >= 0 && this.covers(this.tasks[holder]!, a, now)) return { mergedInto: holder };
      this.tasks.push({ ...a, status: 'WAITING', gone: false, claimed: holder < 0, runs: 0 });
    } else {
      this.tasks.push({ ...a, status: 'WAITING', gone: false, claimed: false, runs: 0 });
    }
    this.settle();
    return { created: this.tasks.length - 1 };
  }

  /** The merge rule: the WAITING task already asks for everything the add asks for, and starts within a minute of it. */
  private covers(holder: ModelTask, a: { keys: string[] | null; at: number; prereq: number | null }, now: number): boolean {
    const keysCovered = holder.keys === null || (a.keys !== null && a.keys.every((k) => holder.keys!.includes(k)));
    const startsTogether = Math.abs(Math.max(holder.at, now) - Math.max(a.at, now)) <= MERGE_WINDOW_MS;
    return keysCovered && holder.prereq === a.prereq && startsTogether && !holder.recur;
  }

  cancel(i: number): string | undefined {
    const t = this.tasks[i]!;
    if (t.gone) return 'does not exist';
    if (t.status !== 'WAITING') return `is ${t.status}`;
    this.leave(t, 'CANCELLED');
    this.settle();
    return undefined;
  }

  /** Reschedule to "1 second": due at once. */
  release(i: number): string | undefined {
    const t = this.tasks[i]!;
    if (t.gone) return 'does not exist';
    if (t.status !== 'WAITING') return `is ${t.status}`;
    t.far = false;
    t.at = Date.now();
    this.settle();
    return undefined;
  }

  retry(i: number): AddOutcome {
    const t = this.tasks[i]!;
    if (t.gone) return { refused: 'does not exist' };
    if (t.status !== 'FAILED' && t.status !== 'CANCELLED') return { refused: `is ${t.status}` };
    return this.add({ method: t.method, ds: t.ds, keys: t.keys, far: false, prereq: t.prereq, recur: t.recur });
  }

  /** Retention: closed COMPLETED or CANCELLED tasks go, except a prerequisite a WAITING task names. */
  flush(): number[] {
    const held = new Set(this.tasks.filter((t) => !t.gone && t.status === 'WAITING' && t.prereq !== null).map((t) => t.prereq));
    const gone: number[] = [];
    this.tasks.forEach((t, i) => {
      if (!t.gone && (t.status === 'COMPLETED' || t.status === 'CANCELLED') && !held.has(i)) {
        t.gone = true;
        gone.push(i);
      }
    });
    return gone;
  }

  /** Runs what is due, to a fixed point: a task runs when its schedule has come and its prerequisite completed. */
  private settle() {
    for (let changed = true; changed;) {
      changed = false;
      for (const t of this.tasks) {
        if (t.gone || t.status !== 'WAITING') continue;
        const p = t.prereq === null ? undefined : this.tasks[t.prereq]!;
        if (p && (p.status === 'FAILED' || p.status === 'CANCELLED')) {
          this.leave(t, 'FAILED');
          changed = true;
        } else if (!t.far && (!p || p.status === 'COMPLETED')) {
          // A recurring task runs, then waits for its next run (an hour on).
          if (t.recur) {
            t.runs++;
            t.far = true;
            t.at = Date.now() + HOUR;
          } else this.leave(t, 'COMPLETED');
          changed = true;
        }
      }
    }
  }

  private leave(t: ModelTask, status: ModelStatus) {
    t.status = status;
    t.claimed = false;
  }
}
