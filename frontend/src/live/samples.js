// Per-service samples for the charts: {t (Unix seconds), cpu (percent), rss (bytes),
// restarts}. Filled from the service objects the dashboard already reads, from the
// supervisor's history route and from its `sample` events when it has them (SPEC §6).

export const SAMPLES_MAX = 720; // an hour at one sample each 5 s

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

// A sample from whatever shape carries one: a service object, a history entry or a `sample`
// event's data. Returns null when it carries no time.
export function toSample(obj, now = Date.now() / 1000) {
  if (!obj || typeof obj !== 'object') return null;
  const t = num(obj.at) ?? num(obj.t) ?? num(obj.time) ?? now;
  return {
    t,
    cpu: num(obj.cpu_percent) ?? num(obj.cpu),
    rss: num(obj.memory_rss_bytes) ?? num(obj.rss_bytes) ?? num(obj.rss),
    restarts: num(obj.restarts),
  };
}

// Appends in time order, replacing a sample of the same second; bounded.
export function addSample(list, sample, max = SAMPLES_MAX) {
  if (!sample) return list;
  const last = list[list.length - 1];
  if (last && sample.t < last.t) {
    return [...list, sample].sort((a, b) => a.t - b.t).slice(-max);
  }
  if (last && Math.floor(last.t) === Math.floor(sample.t)) return [...list.slice(0, -1), sample];
  const next = [...list, sample];
  return next.length > max ? next.slice(next.length - max) : next;
}

// A history answer as a sample list: the supervisor's columns (`{t: [...], cpu_percent: [...],
// memory_rss_bytes: [...], restarts: [...]}`, SPEC §6 History), or rows.
export function fromHistory(body) {
  if (body && Array.isArray(body.t)) {
    const col = (k) => (Array.isArray(body[k]) ? body[k] : []);
    return body.t.map((t, i) => toSample({ at: t, cpu_percent: col('cpu_percent')[i],
      memory_rss_bytes: col('memory_rss_bytes')[i], restarts: col('restarts')[i] }, NaN))
      .filter((s) => Number.isFinite(s.t));
  }
  const rows = Array.isArray(body) ? body : (body && (body.samples || body.history)) || [];
  return rows.map((r) => toSample(r, NaN)).filter((s) => s && Number.isFinite(s.t));
}

// The columns uPlot draws: [times, values] with nulls where a figure is missing.
export function columns(list, field) {
  return [list.map((s) => s.t), list.map((s) => s[field])];
}
