import { fetchSupervisorHealth } from '../api.js';
import usePolling from '../hooks/usePolling.js';

const TEXT = {
  healthy: 'All critical services are up',
  degraded: 'Degraded: a non-critical service is down',
  unhealthy: 'Unhealthy: a critical service is down',
};

export default function StatusBanner({ live }) {
  const { data, error, loading } = usePolling(fetchSupervisorHealth, 5000);
  let status = data && data.status;
  let text = TEXT[status] || (status ? `Status: ${status}` : '');
  if (error && !data) {
    status = 'unreachable';
    text = `Supervisor unreachable (${error.message})`;
  } else if (loading && !data) {
    status = 'unknown';
    text = 'Asking the supervisor…';
  }
  return (
    <div className={`banner banner-${status}`} data-testid="status-banner" role="status">
      <strong>{status}</strong>
      <span>{text}</span>
      <span className="live" title="Server-sent events from the supervisor">
        {live ? '● live' : '○ polling'}
      </span>
    </div>
  );
}
