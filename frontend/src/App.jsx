import { useCallback, useEffect, useState } from 'react';
import { loadApiKey, serviceAction, storeApiKey } from './api.js';
import useServices from './hooks/useServices.js';
import StatusBanner from './components/StatusBanner.jsx';
import ServiceTable from './components/ServiceTable.jsx';
import ApiKeyForm from './components/ApiKeyForm.jsx';
import LogView from './components/LogView.jsx';
import Trades from './components/Trades.jsx';

export const KEY_NEEDED = 'Enter the supervisor\'s API key to see the services and their logs.';

export default function App() {
  const [apiKey, setApiKey] = useState(loadApiKey);
  const { services, error, live, refetch } = useServices({ apiKey });
  const [keyMessage, setKeyMessage] = useState(() => (loadApiKey() ? '' : KEY_NEEDED));
  const [pending, setPending] = useState(null); // the action waiting for a key
  const [busy, setBusy] = useState(() => new Set());
  const [notice, setNotice] = useState(null);
  const [logsOf, setLogsOf] = useState(null);

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
    <div className="app">
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
        />
      </section>

      {logsOf && apiKey && <LogView name={logsOf} apiKey={apiKey} onClose={() => setLogsOf(null)} />}

      <Trades />
    </div>
  );
}
