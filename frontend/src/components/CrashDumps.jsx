import { useEffect, useState } from 'react';
import { fetchCrash, fetchCrashes } from '../api.js';
import { formatTime } from '../format.js';

// The crash dumps (GET /api/crashes): a list, newest first, and the chosen dump's exit,
// resources and last lines. Re-read when `version` changes (a crash, a reconnect).
export default function CrashDumps({ apiKey, version }) {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(null);
  const [dump, setDump] = useState(null);

  useEffect(() => {
    let dead = false;
    fetchCrashes(apiKey).then((b) => { if (!dead) { setList(b.crashes || []); setError(null); } },
      (err) => { if (!dead) setError(err); });
    return () => { dead = true; };
  }, [apiKey, version]);

  useEffect(() => {
    if (!open) { setDump(null); return undefined; }
    let dead = false;
    fetchCrash(open, apiKey).then((b) => { if (!dead) setDump(b.dump); },
      (err) => { if (!dead) setDump({ error: err.message }); });
    return () => { dead = true; };
  }, [open, apiKey]);

  return (
    <section className="panel crashes" aria-labelledby="crashes-title">
      <header>
        <h2 id="crashes-title">Crash dumps</h2>
        {error && <span className="error">{error.message}</span>}
      </header>
      <div className="split">
        {!list ? <p className="empty">Loading…</p> : list.length === 0 ? <p className="empty">No crashes recorded.</p> : (
          <ul className="pick" data-testid="crash-list">
            {list.slice(0, 50).map((c) => (
              <li key={c.file}>
                <button type="button" className={open === c.file ? 'picked' : ''} aria-pressed={open === c.file}
                  onClick={() => setOpen(open === c.file ? null : c.file)} data-testid={`crash-${c.file}`}>
                  <strong>{c.service}</strong> <span className="muted">{formatTime(c.at)}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
        {dump && (
          <article className="dump" data-testid="crash-dump" aria-label={`crash dump ${open}`}>
            {dump.error ? <p className="error">{dump.error}</p> : (
              <>
                <dl>
                  <dt>service</dt><dd>{dump.service}</dd>
                  <dt>reason</dt><dd>{dump.reason}</dd>
                  <dt>exit</dt><dd>{dump.exit ? (dump.exit.signal || `code ${dump.exit.code}`) : '—'}</dd>
                  <dt>pid</dt><dd>{dump.pid ?? '—'}</dd>
                  <dt>at</dt><dd>{formatTime(dump.at)}</dd>
                  <dt>uptime</dt><dd>{dump.uptime_seconds != null ? `${dump.uptime_seconds}s` : '—'}</dd>
                  <dt>restarts</dt><dd>{dump.restarts ?? '—'}</dd>
                </dl>
                <h3>Last lines</h3>
                <pre className="term">{(dump.last_lines || []).join('\n') || '(none)'}</pre>
                {(dump.resources || dump.stuck || dump.process) && (
                  <details>
                    <summary>Resources and process state</summary>
                    <pre>{JSON.stringify({ resources: dump.resources, stuck: dump.stuck, process: dump.process }, null, 2)}</pre>
                  </details>
                )}
              </>
            )}
          </article>
        )}
      </div>
    </section>
  );
}
