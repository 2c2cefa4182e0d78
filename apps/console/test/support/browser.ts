import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { build } from 'vite';

/** Debian's Chromium, headless: `npx playwright install` cannot download a browser here. */
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

const SCREENSHOTS = fileURLToPath(new URL('../../test-results/', import.meta.url));

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
}

/**
 * Saves the whole page to apps/console/test-results/<name>.png for a person to look at, when
 * CONSOLE_SCREENSHOTS is set: rendering and encoding console.test.ts's 22 full pages took a
 * fifth of the browser's CPU (~10 s of a run), and no test reads them.
 */
export async function savePage(page: Page, name: string): Promise<void> {
  if (!process.env.CONSOLE_SCREENSHOTS) return;
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png`, fullPage: true });
}

const CONSOLE_DIR = fileURLToPath(new URL('../../', import.meta.url));

/** Builds the console into a folder of its own (its name from `name`), for one test file to serve; the caller removes it. */
export async function buildConsole(name: string): Promise<string> {
  const built = await mkdtemp(path.join(tmpdir(), `${name}-`));
  await build({ root: CONSOLE_DIR, configFile: `${CONSOLE_DIR}vite.config.ts`, logLevel: 'warn', build: { outDir: built, emptyOutDir: true } });
  return built;
}

/**
 * Serves `tab` the console's files from the build in `built`, any other path its index.html (it
 * routes itself), as the api at `base` serves it; `headTags` put into that page's head, as the
 * api puts its own (plugins/console.ts: the shop's currency, the give-up waits).
 */
export async function serveConsole(tab: Page, base: string, built: string, headTags = ''): Promise<void> {
  await tab.route(`${base}/console**`, async (route) => {
    const requested = new URL(route.request().url()).pathname.replace(/^\/console\/?/, '');
    const file = path.join(built, requested);
    if (requested !== '' && requested !== 'index.html' && existsSync(file) && statSync(file).isFile()) return route.fulfill({ path: file });
    const page = await readFile(path.join(built, 'index.html'), 'utf8');
    return route.fulfill({ contentType: 'text/html; charset=utf-8', body: page.replace('</head>', `${headTags}</head>`) });
  });
}

/** Signs `tab` in to the console at `base` with `token`: done once the orders page shows. */
export async function signIn(tab: Page, base: string, token: string): Promise<void> {
  await tab.goto(`${base}/console/`);
  await tab.getByLabel('Token').fill(token);
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.getByRole('heading', { name: 'Orders', level: 1 }).waitFor();
}
