#!/usr/bin/env node
// The package's command: runs the TypeScript sources through tsx (no build step to forget).
import { register } from 'tsx/esm/api';

register();
// Tracing first (when OTEL_EXPORTER_OTLP_ENDPOINT is set): pg and fastify are instrumented as they load.
const { startTracing, stopTracing } = await import('../src/telemetry/tracing.ts');
const { tracingSettings } = await import('../src/config.ts');
startTracing(tracingSettings(), `registry-taskmgr-${process.argv[2] ?? 'cli'}`);
const { main } = await import('../src/cli/main.ts');
await main();
await stopTracing().catch(() => undefined);
// A failed command has said why and cleaned up; a handle the SDK's native runtime still holds
// (a worker refused by the server, say) must not keep it running.
if (process.exitCode) process.exit();
