// The event timeline: supervisor events turned into rows a person reads. Pure functions,
// tested in timeline.test.js.

export const TIMELINE_MAX = 300; // rows kept in the browser; older ones fall off

const KINDS = {
  state: 'state', restart: 'restart', freeze: 'freeze', reload: 'reload', rollout: 'rollout',
  probe: 'probe', circuit_open: 'circuit', recovered: 'recovered', host: 'host',
};

// One row {id, at, kind, service, text, tone} for an event, or null for what is not shown
// (samples, snapshots).
export function describe(type, data) {
  if (!data || typeof data !== 'object' || !Object.hasOwn(KINDS, type)) return null;
  const service = typeof data.service === 'string' ? data.service : '';
  const at = typeof data.at === 'number' ? data.at : Date.now() / 1000;
  let text = type;
  let tone = 'muted';
  switch (type) {
    case 'state':
      text = `→ ${data.state}${data.reason ? ` (${data.reason})` : ''}`;
      tone = data.state === 'running' ? 'good' : data.state === 'fatal' ? 'bad'
        : data.state === 'backoff' ? 'warn' : 'info';
      break;
    case 'restart':
      text = `restart: ${data.reason || 'unknown reason'}`;
      tone = data.reason === 'manual' || data.reason === 'reload' ? 'info' : 'warn';
      break;
    case 'freeze':
      text = `freeze (${data.kind || 'unknown'})`;
      tone = data.kind === 'hard' ? 'bad' : 'warn';
      break;
    case 'reload':
      text = `reload${data.result ? `: ${data.result}` : ''}${listed(data)}`;
      tone = 'info';
      break;
    case 'rollout':
      text = `rollout${data.phase ? ` ${data.phase}` : ''}${data.result ? `: ${data.result}` : ''}`;
      tone = data.result === 'failed' || data.phase === 'aborted' ? 'bad' : 'info';
      break;
    case 'probe':
      text = `${data.probe || 'probe'} ${data.ok === false || data.passed === false ? 'failed' : 'passed'}`;
      tone = data.ok === false || data.passed === false ? 'warn' : 'good';
      break;
    case 'circuit_open':
      text = 'circuit open: restarts stopped';
      tone = 'bad';
      break;
    default:
      text = type;
  }
  return { at, kind: KINDS[type], service, text, tone };
}

function listed(data) {
  const parts = ['added', 'removed', 'changed']
    .filter((k) => Array.isArray(data[k]) && data[k].length)
    .map((k) => `${k} ${data[k].join(', ')}`);
  return parts.length ? ` (${parts.join('; ')})` : '';
}

// Newest first, bounded; `seq` gives each row a stable React key.
export function push(rows, row, seq, max = TIMELINE_MAX) {
  if (!row) return rows;
  return [{ ...row, id: seq }, ...rows].slice(0, max);
}

export function matches(row, filter) {
  if (!filter) return true;
  const needle = filter.toLowerCase();
  return `${row.service} ${row.kind} ${row.text}`.toLowerCase().includes(needle);
}
