import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

// served by the api under /console (apps/api/src/plugins/console.ts), so every asset URL starts there
export default defineConfig({
  base: '/console/',
  plugins: [preact()],
  build: { outDir: 'dist', emptyOutDir: true },
});
