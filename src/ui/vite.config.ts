// Build: `vite build --config src/ui/vite.config.ts` → dist/ui (served by the API at /).
// Dev: `vite --config src/ui/vite.config.ts` proxies the API to a running `gridpulse up`
// (GRIDPULSE_URL, default http://127.0.0.1:8080).
import { defineConfig } from 'vite';

const here = decodeURIComponent(new URL('.', import.meta.url).pathname);
const environment = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const target = environment.GRIDPULSE_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root: here,
  base: './',
  publicDir: false,
  build: {
    outDir: `${here}../../dist/ui`,
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      '/api': { target, changeOrigin: true },
      '/v1': { target, changeOrigin: true },
      '/simulate': { target, changeOrigin: true },
    },
  },
});
