import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';
import { HttpProblem, notFound } from '../problems.js';

/** Where the console's pages are served (security-headers gives them a page's headers) */
export const CONSOLE_PATH = '/console';

/** apps/console/dist, seen from apps/api/src/plugins (tests) and apps/api/dist/plugins (npm start) alike */
const BUILT_CONSOLE = fileURLToPath(new URL('../../../console/dist/', import.meta.url));

/** What the console's page tells it of the shop it serves. */
interface ShopSettings {
  currency: string;
  refundConfirmationGiveUpMs: number;
  paymentConfirmationGiveUpMs: number;
}

/** The tags index.html is served with, naming the shop's settings (one build serves every shop). */
export function consoleShopTags(shop: ShopSettings): string {
  return `<meta name="shop-currency" content="${shop.currency}" /><meta name="refund-confirmation-give-up-ms" content="${shop.refundConfirmationGiveUpMs}" /><meta name="payment-confirmation-give-up-ms" content="${shop.paymentConfirmationGiveUpMs}" />`;
}

/**
 * The merchants' and operators' web console, a Vite build served under /console. Any
 * path that is not a built file answers index.html, so deep links (an order's page) load
 * the app, which routes itself; a missing file (an asset of an older build, a name with
 * an extension) is 404, never a page in its place. Without a build, /console says how to
 * make one. index.html names the shop's currency (`shop-currency`), which the console
 * shows amounts in, and how long a refund's confirmation is waited for
 * (`refund-confirmation-give-up-ms`), and a payment's (`payment-confirmation-give-up-ms`), past which it
 * offers to ask again: one build serves every shop.
 */
export const consolePlugin = fp(
  async (app: FastifyInstance, options: ShopSettings & { root?: string }) => {
    const root = path.resolve(options.root ?? BUILT_CONSOLE);
    const shopTags = consoleShopTags(options);
    await app.register(fastifyStatic, { root, serve: false });

    async function serve(reply: FastifyReply, requested: string) {
      if (!existsSync(path.join(root, 'index.html'))) {
        throw new HttpProblem(503, 'SERVICE_UNAVAILABLE', 'The console is not built: run npm run build (or npm start), then reload');
      }
      const file = path.resolve(root, requested);
      // index.html names the current build's assets: asked for by its name too, it is checked on every load
      if (requested !== '' && file !== path.join(root, 'index.html')) {
        if (file.startsWith(root + path.sep) && existsSync(file) && statSync(file).isFile()) {
          // Vite puts a content hash in every asset's name, so an asset never changes
          return reply.sendFile(path.relative(root, file), root, { maxAge: '365d', immutable: true });
        }
        if (requested.startsWith('assets/') || path.extname(requested) !== '') throw notFound('console file');
      }
      const page = await readFile(path.join(root, 'index.html'), 'utf8');
      return reply
        .header('cache-control', 'no-cache')
        .type('text/html; charset=utf-8')
        .send(page.replace('</head>', `${shopTags}</head>`));
    }

    const hide = { schema: { hide: true } };
    app.get(CONSOLE_PATH, hide, async (_request, reply) => serve(reply, ''));
    app.get<{ Params: { '*': string } }>(`${CONSOLE_PATH}/*`, hide, async (request, reply) => serve(reply, request.params['*']));
  },
  { name: 'console', dependencies: ['problem-details'] },
);
