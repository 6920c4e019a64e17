import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The dev server proxies the same paths the Node gateway serves, so the app always talks to
// its own origin: /api (backend, via the gateway) and /supervisor (control API, via the gateway).
const gateway = process.env.GATEWAY_URL || 'http://127.0.0.1:3000';
const port = Number(process.env.FRONTEND_PORT || 5173);

export default defineConfig({
  plugins: [react()],
  server: {
    host: '127.0.0.1',
    port,
    strictPort: true,
    proxy: {
      '/api': { target: gateway, changeOrigin: true },
      '/supervisor': { target: gateway, changeOrigin: true },
    },
  },
  preview: { host: '127.0.0.1', port, strictPort: true },
  build: { outDir: 'dist', emptyOutDir: true },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{js,jsx}'],
    restoreMocks: true,
  },
});
