/** `npm run temporal -- ARGS`: the project's Temporal CLI (found, built or downloaded once). */
import { spawn } from 'node:child_process';
import { findTemporalCli } from '../src/dev/temporal-cli.ts';

const cli = await findTemporalCli();
const child = spawn(cli, process.argv.slice(2), { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
