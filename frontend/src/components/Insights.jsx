import { useEffect, useState } from 'react';
import { fetchDiagnostics, fetchSuggestions } from '../api.js';

const TONE = { healthy: 'good', warning: 'warn', error: 'bad' };

function useRead(load, apiKey, version, everyMs) {
  const [state, setState] = useState({ data: null, error: null });
  useEffect(() => {
    let dead = false;
    let timer;
    const tick = () => load(apiKey).then((data) => { if (!dead) setState({ data, error: null }); },
      (error) => { if (!dead) setState((s) => ({ ...s, error })); })
      .finally(() => { if (!dead) timer = setTimeout(tick, everyMs); });
    tick();
    return () => { dead = true; clearTimeout(timer); };
  }, [load, apiKey, version, everyMs]);
  return state;
}

// What the supervisor suggests from its crash and probe history, with the evidence.
export function Suggestions({ apiKey, version }) {
  const { data, error } = useRead(fetchSuggestions, apiKey, version, 15000);
  const rows = (data && data.suggestions) || [];
  return (
    <section className="panel" aria-labelledby="suggestions-title" data-testid="suggestions">
      <header><h2 id="suggestions-title">Suggestions</h2>{error && <span className="error">{error.message}</span>}</header>
      {!data ? <p className="empty">Loading…</p> : rows.length === 0 ? <p className="empty">Nothing to suggest.</p> : (
        <ul className="suggestions">
          {rows.map((s) => (
            <li key={`${s.rule}:${s.service}`}>
              <span className="tag">{s.rule.replace(/_/g, ' ')}</span> <strong>{s.service}</strong>: {s.message}
              <details><summary>evidence</summary><pre>{JSON.stringify(s.evidence, null, 2)}</pre></details>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

// The supervisor's and the host's resources, each check graded.
export function Diagnostics({ apiKey, version }) {
  const { data, error } = useRead(fetchDiagnostics, apiKey, version, 10000);
  const checks = (data && data.checks) || {};
  return (
    <section className="panel" aria-labelledby="diagnostics-title" data-testid="diagnostics">
      <header>
        <h2 id="diagnostics-title">Diagnostics</h2>
        {data && <span className={`badge badge-${TONE[data.status] || 'muted'}`}>{data.status}</span>}
        {error && <span className="error">{error.message}</span>}
      </header>
      {!data ? <p className="empty">Loading…</p> : (
        <table className="checks">
          <tbody>
            {Object.entries(checks).map(([name, c]) => (
              <tr key={name}>
                <th scope="row">{name.replace(/_/g, ' ')}</th>
                <td><span className={`badge badge-${TONE[c.status] || 'muted'}`}>{c.status}</span></td>
                <td className="muted">{c.message || summary(c)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function summary(check) {
  return Object.entries(check)
    .filter(([k, v]) => k !== 'status' && (typeof v === 'number' || typeof v === 'string'))
    .slice(0, 4).map(([k, v]) => `${k.replace(/_/g, ' ')} ${typeof v === 'number' ? Math.round(v * 100) / 100 : v}`)
    .join(' · ');
}
