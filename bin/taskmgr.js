#!/usr/bin/env node
// The package's command: runs the TypeScript sources through tsx (no build step to forget).
import { register } from 'tsx/esm/api';

register();
// Tracing first (when OTEL_EXPORTER_OTLP_ENDPOINT is set): pg and fastify are instrumented as they
// load. Without it the OpenTelemetry SDK is not loaded at all (a second off every command).
const tracing = process.env.OTEL_EXPORTER_OTLP_ENDPOINT ? await import('../src/telemetry/tracing-sdk.ts') : undefined;
if (tracing) {
  const { tracingSettings } = await import('../src/config.ts');
  tracing.startTracing(tracingSettings(), `registry-taskmgr-${process.argv[2] ?? 'cli'}`);
}
const { main } = await import('../src/cli/main.ts');
await main();
// The last spans are sent, but an unreachable collector does not hold the exit up.
if (tracing) await Promise.race([tracing.stopTracing().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
// The command has finished (or failed, said why and cleaned up): a handle a library still holds
// (the SDK's native runtime after a refused worker, an exporter's keep-alive socket) must not keep
// the process running.
process.exit();
