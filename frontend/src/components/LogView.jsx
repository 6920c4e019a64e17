import { useEffect, useRef } from 'react';
import { fetchLogs } from '../api.js';
import usePolling from '../hooks/usePolling.js';

export const LOG_LINES = 200;
export const LOG_REFRESH_MS = 2000;

// The tail of one service's log, refreshed while open; it follows the end unless the
// reader has scrolled up.
export default function LogView({ name, apiKey, onClose }) {
  const { data, error } = usePolling(() => fetchLogs(name, LOG_LINES, apiKey), LOG_REFRESH_MS,
    { key: `${name}\n${apiKey}` });
  const pre = useRef(null);
  const follow = useRef(true);

  const lines = (data && data.lines) || [];
  const text = lines.join('\n');

  useEffect(() => {
    if (pre.current && follow.current) pre.current.scrollTop = pre.current.scrollHeight;
  }, [text]);

  const onScroll = () => {
    const el = pre.current;
    follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
  };

  return (
    <section className="panel logs">
      <header>
        <h2>Logs: {name}</h2>
        <span className="muted">last {LOG_LINES} lines, every {LOG_REFRESH_MS / 1000}s</span>
        <button type="button" onClick={onClose}>Close</button>
      </header>
      {error && <p className="error">Could not read logs: {error.message}</p>}
      <pre ref={pre} onScroll={onScroll} data-testid="log-view">{text || (data ? '(empty)' : 'Loading…')}</pre>
    </section>
  );
}
