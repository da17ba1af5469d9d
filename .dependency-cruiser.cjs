/**
 * The hub's dependency rules (issue 11; README "Project layout"). `npm test` runs `npm run deps`,
 * which fails on any rule of severity "error". Rules still marked "warn" name arrows that run
 * against the target layering and are still in the code; each becomes an error once its arrows
 * are gone. Type-only imports count (tsPreCompilationDeps).
 *
 * Target: webhooks → lifecycle → billing, reporting → ports ← adapters (connectors); src/domain
 * below everything and importing nothing; config, prisma, queue, common as infrastructure below
 * the modules; the simulator and the CLI are tools, never a hub code path.
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
      severity: 'warn',
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
      name: 'adapters-below-the-core',
      comment:
        'Connectors (adapters) depend on ports and the domain, not on the modules using them.',
      severity: 'warn',
      from: { path: '^src/connectors/', pathNot: '\\.spec\\.ts$' },
      to: { path: `^src/(${MODULES.replace('|connectors', '')})/` },
    },
    {
      name: 'infrastructure-below-the-modules',
      comment:
        'config, prisma, queue, common, observability and the timeline store sit below every module.',
      severity: 'warn',
      from: {
        path: '^src/(config|prisma|queue|common|observability|timeline)/',
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
