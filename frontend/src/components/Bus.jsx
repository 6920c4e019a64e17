import { useCallback, useEffect, useRef, useState } from 'react';
import { BUS_EVENTS_URL, deadLetterAction, fetchDeadLetters, readEventStream } from '../api.js';
import { formatPrice, formatTime } from '../format.js';
import { addFills, depthRows, dlqDepth } from '../live/bus.js';

export const RETRY_MS = 2000;

// The message bus, live: fills as the bot publishes them, each stream's depth and each
// consumer's lag, and the dead-letter queue with re-queue and drop (the gateway's /bus/*).
export default function Bus({ apiKey }) {
  const [fills, setFills] = useState([]);
  const [depth, setDepth] = useState(null);
  const [live, setLive] = useState(false);
  const [noBus, setNoBus] = useState(false);
  const [dlq, setDlq] = useState({ entries: [], disabled: false, error: null });
  const [busy, setBusy] = useState(null);
  const lastDlqDepth = useRef(null);

  const readDlq = useCallback(() => {
    fetchDeadLetters().then((body) => {
      if (body && Array.isArray(body.tasks)) setDlq({ entries: body.tasks, disabled: false, error: null });
      else setDlq({ entries: [], disabled: true, error: null });
    }, (error) => setDlq((d) => ({ ...d, error })));
  }, []);

  useEffect(() => { readDlq(); }, [readDlq]);

  useEffect(() => {
    if (!apiKey) return undefined;
    const controller = new AbortController();
    let timer;
    const onEvent = (type, text) => {
      let data;
      try { data = JSON.parse(text); } catch { return; }
      if (type === 'fills') setFills((list) => addFills(list, data));
      else if (type === 'depth') {
        setDepth(data);
        const n = dlqDepth(data);
        if (n !== null && n !== lastDlqDepth.current) {
          lastDlqDepth.current = n;
          readDlq();
        }
      } else if (type === 'task' && data && data.state === 'dead') readDlq();
    };
    const run = () => {
      let again = true;
      readEventStream(apiKey, { url: BUS_EVENTS_URL, signal: controller.signal, onOpen: () => setLive(true), onEvent })
        .catch((err) => {
          // 404: this gateway runs without NATS_URL; asking again would not change that.
          if (err && err.status === 404) {
            again = false;
            setNoBus(true);
          }
        })
        .finally(() => {
          setLive(false);
          if (again && !controller.signal.aborted) timer = setTimeout(run, RETRY_MS);
        });
    };
    run();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [apiKey, readDlq]);

  const act = async (seq, action) => {
    setBusy(`${action}-${seq}`);
    try {
      await deadLetterAction(seq, action, apiKey);
      setDlq((d) => ({ ...d, entries: d.entries.filter((e) => e.dlq_seq !== seq), error: null }));
    } catch (error) {
      setDlq((d) => ({ ...d, error }));
    } finally {
      setBusy(null);
      readDlq();
    }
  };

  const rows = depthRows(depth);
  return (
    <section className="panel" aria-labelledby="bus-title" data-testid="bus-panel">
      <header>
        <h2 id="bus-title">Message bus</h2>
        <span className={live ? 'badge badge-good' : 'badge'} data-testid="bus-live">{live ? 'live' : noBus ? 'no bus' : 'offline'}</span>
      </header>
      <div className="grid">
        <div>
          <h3>Streams</h3>
          <table data-testid="bus-depth">
            <thead><tr><th>Stream</th><th className="num">Depth</th><th>Consumer</th><th className="num">Lag</th><th className="num">Unacked</th></tr></thead>
            <tbody>
              {rows.length === 0 && <tr><td colSpan={5} className="empty">No figures yet.</td></tr>}
              {rows.map((r) => (
                <tr key={`${r.stream}/${r.consumer}`} data-testid={`depth-${r.stream}${r.consumer ? `-${r.consumer}` : ''}`}>
                  <td>{r.stream}</td>
                  <td className="num">{r.messages}</td>
                  <td>{r.consumer ?? '—'}</td>
                  <td className="num">{r.lag ?? '—'}</td>
                  <td className="num">{r.ackPending ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div>
          <h3>Live fills</h3>
          <ul className="fills" data-testid="bus-fills">
            {fills.length === 0 && <li className="empty">No fills yet.</li>}
            {fills.map((f, i) => (
              <li key={`${f.fill_id ?? i}`}>
                {formatTime(f.filled_at)} {String(f.symbol ?? '')} <span className={f.side === 'buy' ? 'pos' : 'neg'}>{String(f.side ?? '')}</span> {String(f.quantity ?? '')} @ {formatPrice(f.price)}
              </li>
            ))}
          </ul>
        </div>
      </div>
      <h3>Dead-letter queue</h3>
      {dlq.error && <p className="error" role="alert">dead-letter queue: {dlq.error.message}</p>}
      {dlq.disabled ? <p className="muted">The AI task queue is off (AI_ENABLED=false).</p> : (
        <table data-testid="dlq-table">
          <thead><tr><th>Task</th><th>Type</th><th>Priority</th><th className="num">Deliveries</th><th>Error</th><th /></tr></thead>
          <tbody>
            {dlq.entries.length === 0 && <tr><td colSpan={6} className="empty">Empty.</td></tr>}
            {dlq.entries.map((e) => (
              <tr key={e.dlq_seq} data-testid={`dlq-${e.dlq_seq}`}>
                <td>{e.task_id}</td>
                <td>{String(e.type)}</td>
                <td>{String(e.priority)}</td>
                <td className="num">{e.deliveries}</td>
                <td className="error">{String(e.error ?? '')}</td>
                <td>
                  <button type="button" disabled={!apiKey || busy !== null} data-testid={`requeue-${e.dlq_seq}`}
                    onClick={() => act(e.dlq_seq, 'requeue')}>Re-queue</button>
                  {' '}
                  <button type="button" disabled={!apiKey || busy !== null} data-testid={`drop-${e.dlq_seq}`}
                    onClick={() => act(e.dlq_seq, 'drop')}>Drop</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
