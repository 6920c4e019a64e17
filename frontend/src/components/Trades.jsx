import { fetchTradeSummary, fetchTrades } from '../api.js';
import { formatMoney, formatPrice, formatTime } from '../format.js';
import usePolling from '../hooks/usePolling.js';
import { staleText } from '../live/bus.js';

export const TRADES_REFRESH_MS = 3000;

const tradesOf = (body) => (Array.isArray(body) ? body : (body && body.trades) || []);
const pnlOf = (summary) => (summary ? summary.realized_pnl ?? summary.total_pnl ?? summary.pnl : undefined);
const tone = (n) => (Number(n) > 0 ? 'pos' : Number(n) < 0 ? 'neg' : '');

// The paper-trading bot's fills and realized P&L, as recorded by the backend.
export default function Trades() {
  const trades = usePolling(() => fetchTrades(50), TRADES_REFRESH_MS);
  const summary = usePolling(fetchTradeSummary, TRADES_REFRESH_MS);
  const rows = tradesOf(trades.data);
  const s = summary.data;
  const pnl = pnlOf(s);

  return (
    <section className="panel">
      <header>
        <h2>Trades</h2>
        {s && s.stale === true && (
          // The gateway's fallback: the backend stayed silent, this is its last good answer.
          <span className="badge badge-warn" data-testid="summary-stale"
            title="the backend did not answer; this is its last good answer">{staleText(s.stale_age_seconds)}</span>
        )}
        {(trades.error || summary.error) && (
          <span className="error">backend: {(trades.error || summary.error).message}</span>
        )}
      </header>
      <div className="summary">
        <div>
          <span className="label">Realized P&amp;L</span>
          <span className={`value ${tone(pnl)}`} data-testid="pnl">{formatMoney(pnl)}</span>
        </div>
        <div><span className="label">Fills</span><span className="value">{s ? s.count ?? '—' : '—'}</span></div>
        <div><span className="label">Buys / sells</span><span className="value">{s ? `${s.buys ?? '—'} / ${s.sells ?? '—'}` : '—'}</span></div>
      </div>
      <table className="trades" data-testid="trades-table">
        <thead>
          <tr>
            <th>Time</th>
            <th>Symbol</th>
            <th>Side</th>
            <th className="num">Quantity</th>
            <th className="num">Price</th>
            <th className="num">P&amp;L</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 && (
            <tr><td colSpan={6} className="empty">{trades.loading ? 'Loading…' : 'No trades yet.'}</td></tr>
          )}
          {rows.map((t, i) => (
            <tr key={t.fill_id ?? t.id ?? i}>
              <td>{formatTime(t.filled_at ?? t.received_at)}</td>
              <td>{t.symbol}</td>
              <td className={t.side === 'buy' ? 'pos' : 'neg'}>{t.side}</td>
              <td className="num">{t.quantity}</td>
              <td className="num">{formatPrice(t.price)}</td>
              <td className={`num ${tone(t.realized_pnl)}`}>{formatMoney(t.realized_pnl)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
