#!/usr/bin/env node
// The package's command: runs the TypeScript sources through tsx (no build step to forget).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main();
// A failed command has said why and cleaned up; a handle the SDK's native runtime still holds
// (a worker refused by the server, say) must not keep it running.
if (process.exitCode) process.exit();
