import { useState } from 'react';
import { matches } from '../live/timeline.js';

const clock = (at) => new Date(at * 1000).toLocaleTimeString();

// The supervisor's events as they come: state changes, restarts with their reason, freezes,
// reloads and rollouts. New rows are announced politely to screen readers.
export default function Timeline({ rows }) {
  const [filter, setFilter] = useState('');
  const shown = rows.filter((r) => matches(r, filter));
  return (
    <section className="panel timeline" aria-labelledby="timeline-title">
      <header>
        <h2 id="timeline-title">Events</h2>
        <label className="inline">
          <span className="sr-only">Filter events</span>
          <input type="search" placeholder="filter events" value={filter}
            onChange={(e) => setFilter(e.target.value)} data-testid="timeline-filter" />
        </label>
      </header>
      {shown.length === 0 ? <p className="empty">No events yet.</p> : (
        <ol className="events" aria-live="polite" data-testid="timeline">
          {shown.map((r) => (
            <li key={r.id} className={`event event-${r.tone}`} data-kind={r.kind} data-service={r.service}>
              <time dateTime={new Date(r.at * 1000).toISOString()}>{clock(r.at)}</time>
              <span className="event-service">{r.service || 'supervisor'}</span>
              <span className="event-text">{r.text}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
