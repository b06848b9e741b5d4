/**
 * OpenTelemetry traces, on when OTEL_EXPORTER_OTLP_ENDPOINT names a collector: a registry call
 * (HTTP request, taskmgr command, registry code) -> the workflows it starts -> their activities ->
 * the SQL statements, exported over OTLP/HTTP. Started once per process by bin/taskmgr.js
 * (`startTracing` in tracing-sdk.ts), before pg and fastify load (their instrumentation patches
 * them as they are loaded). This module is what the rest of the code calls: off, every function
 * here does nothing, and the OpenTelemetry SDK is never loaded.
 */
import { context, propagation, ROOT_CONTEXT, trace, type Attributes, type Link, type SpanContext } from '@opentelemetry/api';
import type { OpenTelemetryPlugin, OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry';

const TRACER_NAME = 'registry-taskmgr';

/** What a started tracer provides (set by startTracing). */
export interface ActiveTracing {
  shutdown(): Promise<void>;
  workerPlugin(): OpenTelemetryPlugin;
  clientInterceptor(): OpenTelemetryWorkflowClientInterceptor;
}

let active: ActiveTracing | undefined;

/** Called once by startTracing. */
export function setActiveTracing(tracing: ActiveTracing): void {
  active = tracing;
}

export const tracingOn = (): boolean => active !== undefined;

/** Sends what is buffered and stops; before the process exits. */
export async function stopTracing(): Promise<void> {
  await active?.shutdown();
  active = undefined;
}

/** The Temporal worker plugin: workflow and activity spans, context carried in Temporal headers. */
export function temporalWorkerPlugins(): OpenTelemetryPlugin[] {
  return active ? [active.workerPlugin()] : [];
}

/** The Temporal client interceptors: a workflow started or signalled joins the caller's trace. */
export function temporalClientInterceptors(): { workflow: OpenTelemetryWorkflowClientInterceptor[] } | undefined {
  return active ? { workflow: [active.clientInterceptor()] } : undefined;
}

/** The fastify plugin that names request spans by route; undefined when tracing is off. */
export async function fastifyTracingPlugin() {
  if (!active) return undefined;
  const { FastifyOtelInstrumentation } = await import('@fastify/otel');
  // The request and its handler; a span per fastify hook would bury them.
  return new FastifyOtelInstrumentation({ instrumentHooks: false }).plugin();
}

/** The current trace context as W3C headers (traceparent, tracestate), to keep beside queued work. */
export function currentTraceCarrier(): Record<string, string> | undefined {
  if (!active || !trace.getActiveSpan()) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ? carrier : undefined;
}

/**
 * Runs `fn` outside the current trace (in a trace of its own). For waking a long-lived shared
 * workflow (a data source's coalescer): in its first caller's trace it would make every later
 * round part of that one call.
 */
export function outsideTrace<T>(fn: () => T): T {
  return active ? context.with(ROOT_CONTEXT, fn) : fn();
}

/**
 * Runs `fn` in a span that continues the trace of queued work (the first carrier) and links the
 * others: a coalesced round serves several callers, each of whom can follow it from their trace.
 */
export async function inTraceOf<T>(carriers: Array<Record<string, string>>, name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  if (!active || carriers.length === 0) return fn();
  const [first, ...others] = carriers.map((c) => propagation.extract(context.active(), c));
  const links: Link[] = others
    .map((ctx) => trace.getSpanContext(ctx))
    .filter((s): s is SpanContext => s !== undefined)
    .map((s) => ({ context: s }));
  const tracer = trace.getTracer(TRACER_NAME);
  return tracer.startActiveSpan(name, { attributes, links }, first!, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: 2, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}
