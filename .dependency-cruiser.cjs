/**
 * The hub's dependency rules (issue 11; README "Project layout"). `npm test` runs `npm run deps`,
 * which fails on any rule (all are errors). Type-only imports count (tsPreCompilationDeps).
 * docs/architecture.md explains the layers.
 *
 * The layers: webhooks → lifecycle → billing, reporting → ports ← adapters (src/connectors, bound to
 * the ports once by the root module); src/domain below everything and importing nothing; config,
 * prisma, queue, common, observability and timeline as infrastructure below the modules; the
 * simulator and the demo/bench CLIs are tools (tools/), never a hub code path.
 */
const MODULES =
  'webhooks|lifecycle|billing|reporting|alerts|admin|dashboard|connectors|health|roles';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No file reaches itself through its imports.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'domain-is-pure',
      comment: 'src/domain is the pure core: it imports nothing of the hub (npm packages only).',
      severity: 'error',
      from: { path: '^src/domain/' },
      to: { path: '^src/', pathNot: '^src/domain/' },
    },
    {
      name: 'tools-are-not-hub-code',
      comment:
        'tools/ (the provider simulator, the demo and bench CLIs) serves tests, the demo and the ' +
        'bench and is not in the production build: nothing under src/ imports it (tests under ' +
        'test/ and unit specs may; specs are not built).',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.spec\\.ts$' },
      to: { path: '^tools/' },
    },
    {
      name: 'core-below-the-doors',
      comment:
        'Lifecycle, billing and reporting never import the doors (webhooks, admin API, dashboard).',
      severity: 'error',
      from: { path: '^src/(lifecycle|billing|reporting)/' },
      to: { path: '^src/(webhooks|admin|dashboard)/' },
    },
    {
      name: 'billing-below-lifecycle-and-reporting',
      comment: 'Billing records facts; the lifecycle derives reports and CRM sync from them.',
      severity: 'error',
      from: { path: '^src/billing/' },
      to: { path: '^src/(lifecycle|reporting)/' },
    },
    {
      name: 'reporting-below-lifecycle-and-billing',
      severity: 'error',
      from: { path: '^src/reporting/' },
      to: { path: '^src/(lifecycle|billing)/' },
    },
    {
      name: 'ports-are-thin',
      comment:
        'A port names what the core needs in its own words: it imports the domain, common utilities and the provider registry only.',
      severity: 'error',
      from: { path: '^src/ports/' },
      to: {
        path: '^src/',
        pathNot: ['^src/(ports|domain|generated|common)/', '^src/config/providers\\.ts$'],
      },
    },
    {
      name: 'only-the-root-binds-adapters',
      comment:
        'Every module reaches a provider through src/ports; only ConnectorsModule (src/connectors) and the root module that imports it (src/roles) name an adapter.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/(connectors|roles)/', '\\.spec\\.ts$'] },
      to: { path: '^src/connectors/' },
    },
    {
      name: 'adapters-below-the-core',
      comment:
        'Connectors (adapters) depend on ports and the domain, not on the modules using them.',
      severity: 'error',
      from: { path: '^src/connectors/', pathNot: '\\.spec\\.ts$' },
      to: { path: `^src/(${MODULES.replace('|connectors', '')})/` },
    },
    {
      name: 'infrastructure-below-the-modules',
      comment:
        'config, prisma, queue, common, observability, security and the timeline store sit below every module.',
      severity: 'error',
      from: {
        path: '^src/(config|prisma|queue|common|observability|security|timeline)/',
        pathNot: '\\.spec\\.ts$',
      },
      to: { path: `^src/(${MODULES})/` },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/generated/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
