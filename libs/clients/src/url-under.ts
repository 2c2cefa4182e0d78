/**
 * `path` (absolute, as the API names it: /v1/...) under `base`, the base's own path kept: a
 * system reached behind a gateway's prefix (https://gw.example/shop-a) is asked there, where
 * `new URL('/v1/...', base)` would ask at the host's root.
 */
export function urlUnder(base: string, path: string): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
  return url.toString();
}
