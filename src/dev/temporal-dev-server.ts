/** Runs the Temporal CLI dev server as a child process, with this project's search attributes. */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../shared.ts';

export interface DevServerOptions {
  cliPath: string;
  ip?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Web UI port; undefined runs headless. */
  uiPort?: number;
  /** Port of Temporal's HTTP API (plain JSON); 0 or undefined picks a free one. */
  httpPort?: number;
  /** SQLite file for persistence across restarts; in memory when unset. */
  dbFile?: string;
  namespace?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  startTimeoutMs?: number;
  /** Extra dynamic config, e.g. { 'history.workflowIdReuseMinimalInterval': '0s' } for tests. */
  dynamicConfig?: Record<string, string>;
}

export interface DevServer {
  address: string;
  /** Temporal's HTTP API, e.g. http://127.0.0.1:7243 (POST /api/v1/namespaces/default/workflows/<id>). */
  httpUrl: string;
  uiUrl?: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

export const TYPE_NAMES: Record<string, string> = {
  KEYWORD: 'Keyword',
  KEYWORD_LIST: 'KeywordList',
  TEXT: 'Text',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
};

/** `--search-attribute` arguments for the project's custom search attributes. */
export const searchAttributeArgs = (): string[] => SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${TYPE_NAMES[k.type] ?? k.type}`]);

/**
 * Ports for servers to listen on are taken below the OS's ephemeral range (32768 and up here): a
 * port the OS had picked could be handed to an outgoing connection before the server binds it (a
 * restarted server was refused its own port so), and a Temporal cluster keeps membership ports
 * in a smallint column.
 */
export const LISTEN_PORTS = { from: 20_000, to: 32_000 };

/** A random free port on `ip` in `range` (LISTEN_PORTS unless given). */
export async function freePort(ip = '127.0.0.1', range = LISTEN_PORTS): Promise<number> {
  for (;;) {
    const wanted = range.from + crypto.randomInt(range.to - range.from);
    const port = await new Promise<number | undefined>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(undefined) : reject(err)));
      srv.listen(wanted, ip, () => srv.close(() => resolve(wanted)));
    });
    if (port !== undefined) return port;
  }
}

/** Starts the dev server and resolves once it answers gRPC calls. */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const port = opts.port || (await freePort(ip));
  const httpPort = opts.httpPort || (await freePort(ip));
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--http-port', String(httpPort), '--log-level', opts.logLevel ?? 'warn'];
  args.push('--namespace', opts.namespace ?? 'default');
  if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  else args.push('--headless');
  if (opts.dbFile) {
    fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
    args.push('--db-filename', opts.dbFile);
  }
  args.push(...searchAttributeArgs());
  // Update-with-start (the record-deletion hand-off) needs multi-operations enabled.
  args.push('--dynamic-config-value', 'frontend.enableExecuteMultiOperation=true');
  for (const [k, v] of Object.entries(opts.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${k}=${JSON.stringify(v)}`);

  const child = spawn(opts.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const address = `${ip}:${port}`;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  let ready = false;
  while (!ready) {
    if (child.exitCode !== null) {
      throw new Error(`the Temporal dev server exited with code ${child.exitCode} before it was ready:\n${output.trim()}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the Temporal dev server did not answer on ${address} within ${(opts.startTimeoutMs ?? 60_000) / 1000} s:\n${output.trim()}`);
    }
    ready = await probe(address, opts.namespace ?? 'default');
    if (!ready) await new Promise((r) => setTimeout(r, 250));
  }
  return {
    address,
    httpUrl: `http://${ip}:${httpPort}`,
    uiUrl: opts.uiPort ? `http://${ip}:${opts.uiPort}` : undefined,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function probe(address: string, namespace: string): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: 1000 });
    // Ready means the namespace exists and our search attributes are registered on it.
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    return SEARCH_ATTRIBUTES.every((k) => customAttributes && k.name in customAttributes);
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}
