/** The alerts Prometheus has pending or firing, read from its HTTP API (PROMETHEUS_URL), for the Health view and `taskmgr status`. */

const ALERTS_TIMEOUT_MS = 2000;

export type AlertsState =
  | { configured: false }
  | { configured: true; url: string; alerts: Array<{ name: string; state: string; severity?: string; summary?: string; activeAt?: string }> }
  | { configured: true; url: string; error: string };

/** The alerts Prometheus evaluates (pending and firing), from its HTTP API; an error says why it could not be read. */
export async function alertsState(prometheusUrl: string | undefined): Promise<AlertsState> {
  if (!prometheusUrl) return { configured: false };
  const url = new URL('api/v1/alerts', prometheusUrl.endsWith('/') ? prometheusUrl : `${prometheusUrl}/`).href;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(ALERTS_TIMEOUT_MS) });
    if (!res.ok) return { configured: true, url: prometheusUrl, error: `Prometheus answered ${res.status}` };
    const body = (await res.json()) as {
      data?: { alerts?: Array<{ labels?: Record<string, string>; annotations?: Record<string, string>; state?: string; activeAt?: string }> };
    };
    const alerts = (body.data?.alerts ?? []).map((a) => ({
      name: a.labels?.alertname ?? '?',
      state: a.state ?? '?',
      severity: a.labels?.severity,
      summary: a.annotations?.summary,
      activeAt: a.activeAt,
    }));
    return { configured: true, url: prometheusUrl, alerts };
  } catch (err) {
    return { configured: true, url: prometheusUrl, error: (err as Error).message };
  }
}
