'use strict';
// Only requests that carry X-API-Key reach the supervisor through the gateway; the
// supervisor checks the key itself. The gateway is a loopback peer of the supervisor, so
// anything it forwarded without a key would look local there (SPEC §6 "Security model").
// /supervisor/health stays open, as the supervisor's /health is.
const OPEN = new Set(['/health']);

function requireApiKey(req, res, next) {
  if (OPEN.has(req.path)) return next();
  const key = req.headers['x-api-key'];
  if (typeof key === 'string' && key.trim() !== '') return next();
  res.setHeader('WWW-Authenticate', 'X-API-Key');
  return res.status(401).json({
    error: 'api_key_required',
    detail: 'send the supervisor key as X-API-Key (only /supervisor/health is open)',
    request_id: req.id,
  });
}

module.exports = { requireApiKey };
