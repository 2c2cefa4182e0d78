/** The import graph rules of STYLE.md: no cycles, libs never import apps, the domain imports no I/O. */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'libs-never-import-apps',
      severity: 'error',
      from: { path: '^libs/' },
      to: { path: '^apps/|@orders/(api|worker|payment-sim|warehouse-sim|console)' },
    },
    {
      name: 'domain-is-pure',
      comment: 'State machines, pricing and splitting have no I/O and no framework imports.',
      severity: 'error',
      from: { path: '^libs/domain/src' },
      to: {
        dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'npm-peer', 'core'],
      },
    },
    {
      name: 'domain-imports-no-other-package',
      severity: 'error',
      from: { path: '^libs/domain/src' },
      to: { path: '^(libs|apps)/(?!domain/)' },
    },
    { name: 'no-orphans-in-src', severity: 'warn', from: { orphan: true, path: '^(libs|apps)/[^/]+/src/', pathNot: 'main\\.ts$|index\\.ts$' }, to: {} },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)dist/|node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    enhancedResolveOptions: { conditionNames: ['source', 'import', 'node', 'default'], exportsFields: ['exports'] },
  },
};
