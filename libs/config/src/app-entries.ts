/** The apps npm run build bundles into one file each (scripts/src/bundle-apps.ts: why). */
export const BUNDLED_APPS = ['api', 'worker'] as const;

export function isBundled(app: string): boolean {
  return (BUNDLED_APPS as readonly string[]).includes(app);
}

/** The file a service process runs, relative to the checkout's root: its bundle, or its tsc build for an app not bundled (the simulators). */
export function appEntry(app: string): string {
  return isBundled(app) ? `apps/${app}/dist/main.bundle.js` : `apps/${app}/dist/main.js`;
}
