import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { BUNDLED_APPS, appEntry } from '@orders/config';

const root = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Each module bundled keeps the place it has in the checkout: its `import.meta.url`, `__filename`
 * and `__dirname` name its own file, not the bundle's. What modules read beside themselves (the
 * stock Lua scripts, config/, the console's build, swagger-ui's pages, ioredis's own package.json,
 * BullMQ's and pino's worker files) is read where it is, as it is unbundled; so the bundle runs
 * only where the checkout (or the image's copy of it, node_modules included) is.
 */
function modulesKeepTheirPlace(bundleDir: string): Plugin {
  return {
    name: 'modules-keep-their-place',
    setup(build) {
      build.onLoad({ filter: /\.[cm]?js$/ }, async ({ path: file }) => {
        const text = await readFile(file, 'utf8');
        const usesUrl = text.includes('import.meta.url');
        // a module that declares its own __dirname (an ES module's stand-in) keeps it
        const usesPath = /\b__(dirname|filename)\b/.test(text) && !/\b(const|let|var|function)\s+__(dirname|filename)\b/.test(text);
        if (!usesUrl && !usesPath) return undefined;
        const relative = JSON.stringify(path.relative(bundleDir, file).split(path.sep).join('/'));
        let contents = usesUrl ? text.replaceAll('import.meta.url', `new URL(${relative}, import.meta.url).href`) : text;
        if (usesPath) {
          contents = contents.replace(/(?<![.\w$])__filename\b/g, `__bundledFile(${relative})`).replace(/(?<![.\w$])__dirname\b/g, `__bundledDir(${relative})`);
        }
        return { contents, loader: 'js' };
      });
    },
  };
}

/** What every bundle starts with: `require` for the CommonJS packages it holds, and the helpers modulesKeepTheirPlace's code calls. */
const PRELUDE = [
  "import { createRequire as __createRequire } from 'node:module';",
  "import { dirname as __dirnameOf } from 'node:path';",
  "import { fileURLToPath as __fileURLToPath } from 'node:url';",
  'const require = __createRequire(import.meta.url);',
  'const __bundledFile = (relative) => __fileURLToPath(new URL(relative, import.meta.url));',
  'const __bundledDir = (relative) => __dirnameOf(__bundledFile(relative));',
].join('\n');

/**
 * The api and the worker as one file each (apps/<app>/dist/main.bundle.js), from tsc's build:
 * what npm start, the image and the tests run. Node loading the ~1,500 module files of the
 * api (Kysely alone is 265, BullMQ 219) made a start ~2.0 s of CPU on a loaded box, ~1.0 s
 * bundled; a worker's ~1.5 s, ~0.8 s (2026-12-07): processes restarted, forked (API_PROCESSES)
 * or scaled out are ready sooner, and the processes a full test run starts took 230 CPU-s, not 346.
 * Names stay as esbuild leaves them (keepNames off): its __name() wrappers cost a worker 1–1.6 %
 * of its CPU under tsx (bench/README item 39), and only functions collide (migrations' up/down).
 */
async function bundleApps(): Promise<void> {
  await Promise.all(
    BUNDLED_APPS.map(async (app) => {
      const outfile = path.join(root, appEntry(app));
      await build({
        entryPoints: [path.join(root, `apps/${app}/dist/main.js`)],
        outfile,
        bundle: true,
        platform: 'node',
        format: 'esm',
        target: 'node20',
        // a native addon is a file of its own: msgpackr (BullMQ) loads it, when installed, beside the bundle
        external: ['msgpackr-extract'],
        sourcemap: 'linked',
        banner: { js: PRELUDE },
        plugins: [modulesKeepTheirPlace(path.dirname(outfile))],
        logLevel: 'warning',
      });
    }),
  );
}

await bundleApps();
