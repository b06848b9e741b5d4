/** The scale run's charts, as standalone SVGs: over the number of related records, and over the registry's size (log scales). */

interface CurvePoint {
  related: number;
  answerP50Ms: number;
  followUpRecordsPerSecond: number;
}

const PANEL = { width: 420, height: 260, left: 64, right: 44, top: 40, bottom: 44 };

/** Answer time (p50, with the least durable hand-off as a line) and follow-up throughput, side by side. */
export function answerCurveSvg(curve: CurvePoint[], handOffMs: number, records: number): string {
  const answer = panel(
    curve.map((p) => [p.related, p.answerP50Ms]),
    { title: 'answer time of a deletion, p50 (ms)', reference: { value: handOffMs, label: `least durable hand-off ${handOffMs} ms` } },
  );
  const throughput = panel(
    curve.map((p) => [p.related, p.followUpRecordsPerSecond]),
    { title: 'follow-up throughput (records/s)' },
  );
  const width = PANEL.width * 2;
  const height = PANEL.height + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<g>${answer}</g>`,
    `<g transform="translate(${PANEL.width},0)">${throughput}</g>`,
    `<text x="${width / 2}" y="${height - 6}" text-anchor="middle" fill="#555">related records of the deleted record (log scale); registry of ${records.toLocaleString('en')} records</text>`,
    '</svg>',
    '',
  ].join('\n');
}

/** Follow-up throughput of one hub's deletion at each registry size, with the same work as set-based SQL dashed. */
export function sizeCurveSvg(
  curve: { registryRecords: number; followUpRecordsPerSecond: number; setBasedRecordsPerSecond: number }[],
  related: number,
): string {
  const width = PANEL.width * 1.5;
  const chart = panel(
    curve.map((p) => [p.registryRecords, p.followUpRecordsPerSecond]),
    {
      title: 'follow-up throughput (records/s): ours, and set-based SQL (dashed)',
      second: curve.map((p) => [p.registryRecords, p.setBasedRecordsPerSecond]),
      width,
    },
  );
  const height = PANEL.height + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<g>${chart}</g>`,
    `<text x="${width / 2}" y="${height - 6}" text-anchor="middle" fill="#555">records in the registry (log scale); a hub with ${related.toLocaleString('en')} related records deleted at each size</text>`,
    '</svg>',
    '',
  ].join('\n');
}

function panel(
  points: [number, number][],
  opts: { title: string; reference?: { value: number; label: string }; second?: [number, number][]; width?: number },
): string {
  const { height, left, right, top, bottom } = PANEL;
  const width = opts.width ?? PANEL.width;
  const xs = points.map(([x]) => Math.log10(x));
  const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  const yMax = niceCeiling(Math.max(...[...points, ...(opts.second ?? [])].map(([, y]) => y), opts.reference?.value ?? 0));
  const px = (x: number) => left + ((Math.log10(x) - xMin) / (xMax - xMin || 1)) * (width - left - right);
  const py = (y: number) => height - bottom - (y / yMax) * (height - top - bottom);
  const line = (pts: [number, number][]) => pts.map(([x, y], i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
  const yTicks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * yMax);
  return [
    `<text x="${left}" y="${top - 16}" font-weight="bold">${opts.title}</text>`,
    ...yTicks.map(
      (y) =>
        `<line x1="${left}" x2="${width - right}" y1="${py(y)}" y2="${py(y)}" stroke="#eee"/><text x="${left - 6}" y="${py(y) + 4}" text-anchor="end">${Math.round(y)}</text>`,
    ),
    ...points.map(([x]) => `<text x="${px(x)}" y="${height - bottom + 16}" text-anchor="middle">${x.toLocaleString('en')}</text>`),
    `<line x1="${left}" x2="${width - right}" y1="${py(0)}" y2="${py(0)}" stroke="#999"/>`,
    opts.reference
      ? `<line x1="${left}" x2="${width - right}" y1="${py(opts.reference.value)}" y2="${py(opts.reference.value)}" stroke="#c60" stroke-dasharray="4 3"/><text x="${width - right}" y="${py(opts.reference.value) - 4}" text-anchor="end" fill="#c60">${opts.reference.label}</text>`
      : '',
    opts.second ? `<path d="${line(opts.second)}" fill="none" stroke="#888" stroke-width="1.5" stroke-dasharray="5 4"/>` : '',
    ...(opts.second ?? []).map(([x, y]) => `<text x="${px(x) + 5}" y="${py(y) + 14}" fill="#888">${Math.round(y)}</text>`),
    `<path d="${line(points)}" fill="none" stroke="#1f5fa8" stroke-width="2"/>`,
    ...points.map(([x, y]) => `<circle cx="${px(x)}" cy="${py(y)}" r="3" fill="#1f5fa8"/><text x="${px(x) + 5}" y="${py(y) - 6}">${Math.round(y)}</text>`),
  ].join('\n');
}

/** 1, 2 or 5 times a power of ten, at or above the value. */
function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value || 1));
  return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= value) ?? 10 * power;
}
