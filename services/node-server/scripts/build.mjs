// `node scripts/build.mjs [--dashboard]`: the gateway's build step under unified-system.
// Installs its dependencies when package-lock.json changed (`npm ci`); with --dashboard
// (production, where this server serves frontend/dist) also builds the dashboard.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDeps, run } from '../../../frontend/scripts/build.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const frontend = join(here, '..', '..', 'frontend');

try {
  ensureDeps(here);
  if (process.argv.includes('--dashboard')) {
    run(process.execPath, [join(frontend, 'scripts', 'build.mjs')], frontend);
  }
} catch (err) {
  process.stderr.write(`build failed: ${err.message}\n`);
  process.exit(1);
}
