import { formatBytes, formatDuration, formatLastExit, healthTone, stateTone } from '../format.js';

function Badge({ tone, children, testId }) {
  return <span className={`badge badge-${tone}`} data-testid={testId}>{children}</span>;
}

const ACTIONS = ['restart', 'stop', 'start'];

// `trend(name)` renders the row's sparklines (CPU, memory, restarts), when given.
export default function ServiceTable({ services, busy = new Set(), onAction, onShowLogs, selected, trend }) {
  if (!services) return <p className="empty">Loading services…</p>;
  if (services.length === 0) return <p className="empty">No services.</p>;
  return (
    <table className="services" data-testid="services-table">
      <thead>
        <tr>
          <th>Name</th>
          <th>State</th>
          <th>Ready</th>
          <th>Health</th>
          <th className="num">Restarts</th>
          <th className="num">Memory</th>
          <th className="num">Uptime</th>
          <th className="num">PID</th>
          <th>Last exit</th>
          {trend && <th>Trend (CPU, memory, restarts)</th>}
          <th aria-label="actions" />
        </tr>
      </thead>
      <tbody>
        {services.map((s) => (
          <tr key={s.name} data-testid={`service-row-${s.name}`} className={selected === s.name ? 'selected' : undefined}>
            <td className="name">
              {s.name}
              {s.critical === false && <span className="tag" title="not critical">opt</span>}
              {s.circuit && s.circuit !== 'closed' && <span className="tag tag-bad" title="circuit breaker">circuit {s.circuit}</span>}
            </td>
            <td><Badge tone={stateTone(s.state)} testId={`state-${s.name}`}>{s.state}</Badge></td>
            <td>{s.ready ? 'yes' : 'no'}</td>
            <td><Badge tone={healthTone(s.health)}>{s.health || 'unknown'}</Badge></td>
            <td className="num" data-testid={`restarts-${s.name}`}>{s.restarts ?? 0}</td>
            <td className="num">{formatBytes(s.memory_rss_bytes)}</td>
            <td className="num">{s.state === 'running' || s.state === 'starting' ? formatDuration(s.uptime_seconds) : '—'}</td>
            <td className="num">{s.pid ?? '—'}</td>
            <td>{formatLastExit(s.last_exit)}</td>
            {trend && <td className="trend">{trend(s.name)}</td>}
            <td className="actions">
              {ACTIONS.map((action) => (
                <button
                  key={action}
                  type="button"
                  data-testid={`${action}-${s.name}`}
                  disabled={busy.has(s.name)}
                  onClick={() => onAction && onAction(s.name, action)}
                >
                  {action[0].toUpperCase() + action.slice(1)}
                </button>
              ))}
              <button type="button" className="link" aria-label={`Open ${s.name}: chart and logs`} data-testid={`open-${s.name}`}
                onClick={() => onShowLogs && onShowLogs(s.name)}>Open</button>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
