// `node scripts/build.mjs`: the dashboard's build step under unified-system (services.yaml).
// Installs dependencies when package-lock.json changed since the last install (`npm ci`),
// then runs `vite build` into dist/. No shell: every step is an argv run with spawnSync.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');

// `npm ci` only when node_modules does not match package-lock.json: a stamp holds the hash of
// the lock file of the last install; without a stamp, npm's own hidden lockfile being newer
// than package-lock.json means an install already happened (e.g. `npm ci` by hand).
// `--include=dev` whatever NODE_ENV says: the runtime's NODE_ENV=production (the production
// overlay) would make `npm ci` omit devDependencies, and the build needs vite from them.
// The stamp names that option too, so a tree installed without them is installed again.
export function ensureDeps(dir) {
  const lock = join(dir, 'package-lock.json');
  const modules = join(dir, 'node_modules');
  const stamp = join(modules, '.unified-lock-sha256');
  const digest = createHash('sha256').update(readFileSync(lock)).update('\0--include=dev')
    .digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest) return;
  const hidden = join(modules, '.package-lock.json');
  const installed = !existsSync(stamp) && existsSync(hidden)
    && statSync(hidden).mtimeMs >= statSync(lock).mtimeMs && devDepsPresent(dir);
  if (!installed) {
    run('npm', ['ci', '--include=dev', '--no-audit', '--no-fund', '--loglevel=error'], dir);
  }
  writeFileSync(stamp, `${digest}\n`);
}

// Every devDependency has its directory under node_modules (an install made with
// NODE_ENV=production or --omit=dev has none of them).
function devDepsPresent(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  return Object.keys(manifest.devDependencies || {})
    .every((name) => existsSync(join(dir, 'node_modules', name, 'package.json')));
}

export function run(command, args, cwd) {
  process.stdout.write(`build: ${command} ${args.join(' ')} (in ${cwd})\n`);
  const result = spawnSync(command, args, { cwd, stdio: 'inherit' });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.signal || `exit ${result.status}`})`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    ensureDeps(here);
    run(process.execPath, [join(here, 'node_modules', 'vite', 'bin', 'vite.js'), 'build'], here);
  } catch (err) {
    process.stderr.write(`build failed: ${err.message}\n`);
    process.exit(1);
  }
}
