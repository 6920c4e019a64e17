'use strict';
// The built dashboard, with a fallback to index.html for client-side routes.
const fs = require('node:fs');
const path = require('node:path');
const express = require('express');

const RESERVED = ['/api', '/supervisor', '/gateway', '/health'];

function isReserved(p) {
  return RESERVED.some((prefix) => p === prefix || p.startsWith(`${prefix}/`));
}

function dashboard({ dist }) {
  const router = express.Router();
  const indexFile = path.join(dist, 'index.html');

  router.use(express.static(dist, {
    index: false,
    setHeaders(res, file) {
      // Vite fingerprints everything under assets/, so it may be cached for good.
      if (file.startsWith(path.join(dist, 'assets') + path.sep)) {
        res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
      }
    },
  }));

  router.use((req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    if (isReserved(req.path)) return next();
    // A missing file with an extension is a 404, not the app shell.
    if (path.posix.basename(req.path).includes('.')) return next();
    if (!fs.existsSync(indexFile)) {
      res.status(503).type('text/plain').send(
        `Dashboard not built: ${indexFile} is missing.\n`
        + 'Run `npm ci && npm run build` in frontend/ (or set FRONTEND_DIST). The API gateway works meanwhile.\n',
      );
      return undefined;
    }
    res.setHeader('Cache-Control', 'no-cache');
    return res.sendFile(indexFile);
  });

  return router;
}

module.exports = { dashboard, isReserved };
