import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

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
