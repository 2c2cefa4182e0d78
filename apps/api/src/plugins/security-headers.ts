import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import helmet from 'helmet';
import { CONSOLE_PATH } from './console.js';
import { DOCS_PATH } from './docs.js';

/**
 * OWASP's REST Security Cheat Sheet set for the JSON answers, problems and 404s included:
 * nothing of an answer is framed, sniffed, cached or loaded as a page's resources. Five short
 * headers instead of helmet's twelve (663 bytes): Node validates and copies every header of
 * every answer, ~11 % of a checkout's CPU with helmet's (bench/README item 36).
 */
const API_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};

/** The paths under which the api serves pages to a browser: the console and the API docs */
const BROWSER_PAGES = [CONSOLE_PATH, DOCS_PATH];

/**
 * The headers helmet's defaults set on a response, captured once, less the policy's
 * upgrade-insecure-requests: over plain http on a shop's network (not localhost) it sends
 * the page's scripts and styles to https, where nothing answers, and the console is blank.
 */
function helmetDefaultHeaders(): Record<string, string> {
  const headers: Record<string, string> = {};
  const response = {
    setHeader: (name: string, value: string | number) => void (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => void delete headers[name.toLowerCase()],
  };
  helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: null } } })({} as IncomingMessage, response as unknown as ServerResponse, () => {});
  return headers;
}

function isBrowserPage(url: string): boolean {
  return BROWSER_PAGES.some((prefix) => url === prefix || url.startsWith(`${prefix}/`));
}

/**
 * Security headers on every answer: the JSON API's set everywhere, helmet's defaults (a
 * content security policy a page can load its own scripts and styles under) on the routes
 * that serve pages, which set their own caching. @fastify/helmet builds helmet's middleware
 * anew on each request (6 % of the intake's CPU in the profile); the defaults use no
 * per-request nonce, so they are computed once.
 */
export const securityHeadersPlugin = fp(
  async (app: FastifyInstance) => {
    app.addHook('onRequest', (_request, reply, done) => {
      reply.headers(API_HEADERS);
      done();
    });
    const pageHeaders = helmetDefaultHeaders();
    const asPage: onRequestHookHandler = (_request, reply, done) => {
      reply.removeHeader('cache-control').headers(pageHeaders);
      done();
    };
    app.addHook('onRoute', (route) => {
      if (isBrowserPage(route.url)) route.onRequest = [...[route.onRequest ?? []].flat(), asPage];
    });
  },
  { name: 'security-headers' },
);
