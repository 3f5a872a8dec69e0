/** The real Jaeger of `scripts/services start jaeger`, read through its query API. */

/** A span as Jaeger's query API returns it, with its process's service name and its tags as a map. */
export interface JaegerSpan {
  spanID: string;
  operationName: string;
  service: string;
  parent?: string;
  references: { refType: string; traceID: string; spanID: string }[];
  tags: Record<string, unknown>;
}

/** Jaeger's query API URL; throws, saying how to start it, when the test environment does not name it. */
export function jaegerQuery(): string {
  const url = process.env.LADING_TEST_JAEGER_QUERY;
  if (!url || !process.env.LADING_TEST_JAEGER_OTLP) {
    throw new Error('LADING_TEST_JAEGER_* are not set: `scripts/services start jaeger`, then `eval "$(scripts/services env)"`');
  }
  return url;
}

/** Jaeger's OTLP/HTTP endpoint, for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
export function jaegerOtlp(): string {
  jaegerQuery();
  return process.env.LADING_TEST_JAEGER_OTLP!;
}

/** The trace whose gateway span carries request id `requestId`, as Jaeger has it now (spans may still be arriving). */
export async function traceOfRequest(requestId: string): Promise<{ traceId: string; spans: JaegerSpan[] } | undefined> {
  return (await findTraces('lading-gateway', { 'lading.request_id': requestId }, 5))[0];
}

/** The traces (newest first, at most `limit`) that have a span of `service` carrying `tags`, from the last hour. */
export async function findTraces(service: string, tags: Record<string, string> = {}, limit = 20): Promise<{ traceId: string; spans: JaegerSpan[] }[]> {
  const q = new URLSearchParams({ service, tags: JSON.stringify(tags), lookback: '1h', limit: String(limit) });
  const found = (await (await fetch(`${jaegerQuery()}/api/traces?${q}`)).json()) as { data: { traceID: string }[] | null };
  return Promise.all((found.data ?? []).map(async (t) => ({ traceId: t.traceID, spans: await traceSpans(t.traceID) })));
}

/** Every span of trace `traceId`. */
export async function traceSpans(traceId: string): Promise<JaegerSpan[]> {
  const r = (await (await fetch(`${jaegerQuery()}/api/traces/${traceId}`)).json()) as {
    data: {
      spans: { spanID: string; operationName: string; processID: string; references: JaegerSpan['references']; tags: { key: string; value: unknown }[] }[];
      processes: Record<string, { serviceName: string }>;
    }[];
  };
  const t = r.data?.[0];
  if (!t) return [];
  return t.spans.map((s) => ({
    spanID: s.spanID,
    operationName: s.operationName,
    service: t.processes[s.processID].serviceName,
    references: s.references,
    // A link to the parent itself (the relay's publish links to the request it continues) comes as one FOLLOWS_FROM.
    parent: (s.references.find((ref) => ref.refType === 'CHILD_OF' && ref.traceID === traceId) ?? s.references.find((ref) => ref.traceID === traceId))
      ?.spanID,
    tags: Object.fromEntries(s.tags.map((tag) => [tag.key, tag.value])),
  }));
}
