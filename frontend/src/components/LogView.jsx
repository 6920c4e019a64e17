import { useEffect, useMemo, useRef, useState } from 'react';
import { fetchLogs } from '../api.js';
import usePolling from '../hooks/usePolling.js';
import { lineFilter } from '../live/logs.js';

export const LOG_LINES = 500;
export const LOG_REFRESH_MS = 1000;

// The live tail of one service's log, with a filter. "Follow" keeps the end in view; scrolling
// up turns it off, and ticking it (or End) turns it back on.
export default function LogView({ name, apiKey, onClose }) {
  const { data, error } = usePolling(() => fetchLogs(name, LOG_LINES, apiKey), LOG_REFRESH_MS,
    { key: `${name}\n${apiKey}` });
  const pre = useRef(null);
  const [follow, setFollow] = useState(true);
  const [filter, setFilter] = useState('');
  const match = useMemo(() => lineFilter(filter), [filter]);

  const lines = (data && data.lines) || [];
  const shown = lines.filter(match.test);
  const text = shown.join('\n');

  useEffect(() => {
    if (pre.current && follow) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text, follow]);

  const onScroll = () => {
    const el = pre.current;
    const atEnd = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    if (!atEnd && follow) setFollow(false);
  };

  return (
    <section className="panel logs" aria-labelledby="logs-title">
      <header>
        <h2 id="logs-title">Logs: {name}</h2>
        <label className="inline">
          <span className="sr-only">Filter log lines</span>
          <input type="search" placeholder="filter (text or /regex/)" value={filter}
            onChange={(e) => setFilter(e.target.value)} data-testid="log-filter" />
        </label>
        <label className="inline">
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} data-testid="log-follow" />
          follow
        </label>
        <span className="muted">{shown.length}/{lines.length} lines</span>
        {onClose && <button type="button" onClick={onClose}>Close</button>}
      </header>
      {error && <p className="error">Could not read logs: {error.message}</p>}
      {match.error && <p className="error">Filter: {match.error}</p>}
      <pre ref={pre} onScroll={onScroll} tabIndex={0} aria-label={`log of ${name}`} data-testid="log-view"
        onKeyDown={(e) => { if (e.key === 'End') setFollow(true); }}>
        {text || (data ? (lines.length ? '(no line matches)' : '(empty)') : 'Loading…')}
      </pre>
    </section>
  );
}
