/**
 * Starts OpenTelemetry tracing: the tracer provider, the OTLP/HTTP exporter and the pg and http
 * instrumentation. Loaded only when a collector is configured (bin/taskmgr.js), so the SDK costs
 * nothing otherwise; the rest of the code calls tracing.ts.
 */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OpenTelemetryPlugin, OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';
import type { TracingSettings } from '../config.ts';
import { setActiveTracing, tracingOn } from './tracing.ts';

export { stopTracing } from './tracing.ts';

/** Installs the tracer provider and the pg and http instrumentation; a no-op without an endpoint or when already on. */
export function startTracing(settings: TracingSettings, defaultServiceName: string): void {
  if (tracingOn() || !settings.otlpEndpoint) return;
  const resource = new Resource({ 'service.name': settings.serviceName ?? defaultServiceName });
  // The batch size and delay follow OTEL_BSP_* when set.
  const spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter({ url: new URL('v1/traces', withSlash(settings.otlpEndpoint)).href }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register(); // AsyncLocalStorage context and W3C trace-context propagation
  // pg spans only inside a traced call: the pool's idle chatter and the gauges' samples stay out.
  registerInstrumentations({ instrumentations: [new HttpInstrumentation(), new PgInstrumentation({ requireParentSpan: true })] });
  setActiveTracing({
    shutdown: () => provider.shutdown(),
    workerPlugin: () => new OpenTelemetryPlugin({ resource, spanProcessor }),
    clientInterceptor: () => new OpenTelemetryWorkflowClientInterceptor(),
  });
}

const withSlash = (url: string) => (url.endsWith('/') ? url : `${url}/`);
