import { useCallback, useEffect, useRef, useState } from 'react';
import { fetchHistory, loadApiKey, serviceAction, storeApiKey } from './api.js';
import useServices from './hooks/useServices.js';
import StatusBanner from './components/StatusBanner.jsx';
import ServiceTable from './components/ServiceTable.jsx';
import ApiKeyForm from './components/ApiKeyForm.jsx';
import LogView from './components/LogView.jsx';
import Trades from './components/Trades.jsx';
import Bus from './components/Bus.jsx';
import Sparkline from './components/Sparkline.jsx';
import ServiceChart from './components/ServiceChart.jsx';
import DependencyGraph from './components/DependencyGraph.jsx';
import Timeline from './components/Timeline.jsx';
import CrashDumps from './components/CrashDumps.jsx';
import { Diagnostics, Suggestions } from './components/Insights.jsx';
import { describe, push } from './live/timeline.js';
import { addSample, columns, fromHistory, toSample } from './live/samples.js';

export const SAMPLE_MS = 5000; // how often the figures are read while the stream is quiet
const EMPTY = [[], []];

export const KEY_NEEDED = 'Enter the supervisor\'s API key to see the services and their logs.';

export default function App() {
  const [apiKey, setApiKey] = useState(loadApiKey);
  const [rows, setRows] = useState([]);
  const [samples, setSamples] = useState({});
  const [crashVersion, setCrashVersion] = useState(0);
  const seq = useRef(0);
  const snapshotsSeen = useRef(0);

  // Every event of the stream: the timeline's rows, the charts' samples, and a nudge to the
  // crash list when something died. A snapshot after the first is a reconnect (the
  // supervisor restarted, or the stream was cut): it is marked, and the panels re-read.
  const onEvent = useCallback((type, data) => {
    if (type === 'snapshot') {
      snapshotsSeen.current += 1;
      if (snapshotsSeen.current > 1) {
        seq.current += 1;
        setRows((r) => push(r, { at: Date.now() / 1000, kind: 'reconnect', service: '',
          text: 'reconnected: snapshot replayed', tone: 'info' }, seq.current));
        setCrashVersion((v) => v + 1);
      }
      return;
    }
    if (type === 'sample' && data && typeof data.service === 'string') {
      setSamples((all) => ({ ...all, [data.service]: addSample(all[data.service] || [], toSample(data)) }));
      return;
    }
    seq.current += 1;
    setRows((r) => push(r, describe(type, data), seq.current));
    if (type === 'restart' || type === 'freeze' || (type === 'state' && data && data.state === 'backoff')) {
      setCrashVersion((v) => v + 1);
    }
  }, []);

  const { services, error, live, refetch } = useServices({ apiKey, onEvent });
  const [keyMessage, setKeyMessage] = useState(() => (loadApiKey() ? '' : KEY_NEEDED));
  const [pending, setPending] = useState(null); // the action waiting for a key
  const [busy, setBusy] = useState(() => new Set());
  const [notice, setNotice] = useState(null);
  const [logsOf, setLogsOf] = useState(null);

  // A sample of every service's figures each time the list is read...
  useEffect(() => {
    if (!services) return;
    const now = Date.now() / 1000;
    setSamples((all) => {
      const next = { ...all };
      for (const svc of services) next[svc.name] = addSample(all[svc.name] || [], toSample({ ...svc, at: now }));
      return next;
    });
  }, [services]);
  // ...and it is read every SAMPLE_MS even when nothing changes, so the lines move on.
  useEffect(() => {
    if (!apiKey) return undefined;
    const timer = setInterval(refetch, SAMPLE_MS);
    return () => clearInterval(timer);
  }, [apiKey, refetch]);
  // An opened service's chart starts with the supervisor's own history, where it keeps one.
  useEffect(() => {
    if (!logsOf || !apiKey) return undefined;
    let dead = false;
    fetchHistory(logsOf, Date.now() / 1000 - 3600, apiKey).then((body) => {
      const old = fromHistory(body);
      if (dead || !old.length) return;
      setSamples((all) => ({ ...all, [logsOf]: old.reduce((l, x) => addSample(l, x), all[logsOf] || []) }));
    }, () => {});
    return () => { dead = true; };
  }, [logsOf, apiKey]);

  const trend = (name) => {
    const list = samples[name] || [];
    return (
      <span className="sparks">
        {['cpu', 'rss', 'restarts'].map((field) => (
          <Sparkline key={field} field={field} data={list.length ? columns(list, field) : EMPTY}
            label={`${field === 'rss' ? 'memory' : field} of ${name}, last ${list.length} samples`}
            testId={`spark-${field}-${name}`} />
        ))}
      </span>
    );
  };

  const mark = (name, on) => setBusy((prev) => {
    const next = new Set(prev);
    if (on) next.add(name);
    else next.delete(name);
    return next;
  });

  const askForKey = (message, action) => {
    storeApiKey('');
    setApiKey('');
    setKeyMessage(message);
    setPending(action);
  };

  // Reads need the key too: a refused one is forgotten and asked for again.
  useEffect(() => {
    if (error && error.status === 401 && apiKey) askForKey('The API key was refused. Enter it again.', null);
  }, [error, apiKey]);

  const runAction = useCallback(async (name, action, key) => {
    if (!key) {
      askForKey(`An API key is needed to ${action} ${name}.`, { name, action });
      return;
    }
    mark(name, true);
    try {
      await serviceAction(name, action, key);
      setNotice({ tone: 'good', text: `${action} ${name}: accepted` });
      refetch();
    } catch (err) {
      if (err.status === 401) {
        askForKey('The API key was refused. Enter it again.', { name, action });
      } else {
        setNotice({ tone: 'bad', text: `${action} ${name} failed: ${err.message}` });
      }
    } finally {
      mark(name, false);
    }
  }, [refetch]);

  const saveKey = (key) => {
    storeApiKey(key);
    setApiKey(key);
    setKeyMessage('');
    if (pending) {
      setPending(null);
      runAction(pending.name, pending.action, key);
    }
  };

  const forgetKey = () => {
    storeApiKey('');
    setApiKey('');
    setKeyMessage(KEY_NEEDED);
  };

  return (
    <main className="app">
      <header className="top">
        <h1>unified-system</h1>
        {apiKey ? (
          <span className="key-set">
            API key set <button type="button" className="link" onClick={forgetKey}>forget</button>
          </span>
        ) : (
          <ApiKeyForm message={keyMessage} onSave={saveKey} />
        )}
      </header>

      <StatusBanner live={live} />

      {notice && (
        <p className={`notice notice-${notice.tone}`} role="alert">
          {notice.text}
          <button type="button" className="link" onClick={() => setNotice(null)}>dismiss</button>
        </p>
      )}

      <section className="panel">
        <header>
          <h2>Services</h2>
          {error && error.status !== 401 && <span className="error">supervisor: {error.message}</span>}
        </header>
        <ServiceTable
          services={services}
          busy={busy}
          selected={logsOf}
          onAction={(name, action) => runAction(name, action, apiKey)}
          onShowLogs={setLogsOf}
          trend={apiKey ? trend : undefined}
        />
      </section>

      {logsOf && apiKey && (
        <section className="panel detail" aria-labelledby="detail-title" data-testid="service-detail">
          <header>
            <h2 id="detail-title">{logsOf}</h2>
            <button type="button" onClick={() => setLogsOf(null)}>Close</button>
          </header>
          <ServiceChart name={logsOf} samples={samples[logsOf] || []} />
          <LogView name={logsOf} apiKey={apiKey} />
        </section>
      )}

      {apiKey && (
        <>
          <div className="grid">
            <section className="panel" aria-labelledby="graph-title">
              <header><h2 id="graph-title">Dependencies</h2><span className="muted">arrows point at the dependent service</span></header>
              <DependencyGraph services={services} onOpen={setLogsOf} selected={logsOf} />
            </section>
            <Timeline rows={rows} />
          </div>
          <Bus apiKey={apiKey} />
          <CrashDumps apiKey={apiKey} version={crashVersion} />
          <div className="grid">
            <Suggestions apiKey={apiKey} version={crashVersion} />
            <Diagnostics apiKey={apiKey} version={crashVersion} />
          </div>
        </>
      )}

      <Trades />
    </main>
  );
}
