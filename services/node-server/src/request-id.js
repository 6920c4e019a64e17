'use strict';
// X-Request-Id: kept from the request when it looks like an id, else generated; echoed on
// the response and forwarded upstream (the proxy copies req.headers).
const crypto = require('node:crypto');

const ACCEPTABLE = /^[A-Za-z0-9._:@+=\-]{1,128}$/;

function requestId(req, res, next) {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && ACCEPTABLE.test(given) ? given : crypto.randomUUID();
  req.headers['x-request-id'] = id;
  req.id = id;
  res.setHeader('X-Request-Id', id);
  next();
}

module.exports = { requestId };
