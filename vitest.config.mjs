import { defineConfig } from 'vitest/config'

// The suite runs on in-memory SQLite always, and on PostgreSQL and MySQL/MariaDB when
// their URLs are given; each test gets a fresh schema / database (__test__/fixtures.ts).
const servers = [
  { name: 'postgresql', env: 'KAVACH_TEST_PG_URL', example: 'postgresql://postgres@127.0.0.1:5432/test' },
  { name: 'mysql', env: 'KAVACH_TEST_MYSQL_URL', example: 'mysql://root@127.0.0.1:3306/test' },
]
const serverSuites = ['__test__/client.test.ts', '__test__/methods.test.ts', '__test__/transactions.test.ts', '__test__/dispatch.test.ts', '__test__/more-tables.test.ts', '__test__/servers.test.ts', '__test__/parity/differential-servers.test.ts', '__test__/fuzz.test.ts', '__test__/kill.test.ts', '__test__/worker.test.ts', '__test__/robustness.test.ts', '__test__/replicas.test.ts', '__test__/observe.test.ts', '__test__/tracing.test.ts']
// The PostgreSQL suites that also run through PgBouncer (pgbouncer=true), in transaction and
// in session pooling (scripts/servers.sh starts both): the adapter goes through it, set-up and
// checks go to the server directly.
const bouncers = [
  { name: 'postgresql-pgbouncer-tx', env: 'KAVACH_TEST_PGBOUNCER_TX_URL' },
  { name: 'postgresql-pgbouncer-session', env: 'KAVACH_TEST_PGBOUNCER_SESSION_URL' },
].filter((b) => process.env[b.env] && process.env.KAVACH_TEST_PG_URL)
const bouncerSuites = ['__test__/methods.test.ts', '__test__/transactions.test.ts', '__test__/dispatch.test.ts', '__test__/more-tables.test.ts', '__test__/parity/differential-servers.test.ts', '__test__/kill.test.ts', '__test__/pgbouncer.test.ts']
const enabled = servers.filter((s) => process.env[s.env])
const missing = servers.filter((s) => !process.env[s.env])
if (missing.length > 0) {
  const how = missing.map((s) => `${s.env}=${s.example}`).join(' ')
  if (process.env.KAVACH_TEST_REQUIRE_SERVERS) {
    throw new Error(`KAVACH_TEST_REQUIRE_SERVERS is set but ${how.replace(/=.*?( |$)/g, ' ')}is missing`)
  }
  console.log(`Skipping the ${missing.map((s) => s.name).join(' and ')} suites; to run them set ${how}`)
}

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 30_000,
    // Checks the servers answer; generates the Prisma 7 client the parity tests use as the oracle.
    globalSetup: ['__test__/servers-setup.mjs', '__test__/parity/global-setup.mjs'],
    projects: [
      {
        extends: true,
        test: {
          name: 'sqlite',
          include: ['__test__/**/*.test.ts'],
          exclude: ['__test__/servers.test.ts'],
          env: { KAVACH_TEST_PROVIDER: 'sqlite' },
        },
      },
      ...enabled.map((s) => ({
        extends: true,
        test: { name: s.name, include: serverSuites, env: { KAVACH_TEST_PROVIDER: s.name } },
      })),
      ...bouncers.map((b) => ({
        extends: true,
        test: { name: b.name, include: bouncerSuites, env: { KAVACH_TEST_PROVIDER: 'postgresql', KAVACH_TEST_PGBOUNCER_URL: process.env[b.env] } },
      })),
      // The differential tests again, with the native adapter on a Prisma client of its own
      // (createAdapter(prisma)) against @kavachos/prisma on the same kind of client.
      ...[{ name: 'sqlite', file: '__test__/parity/differential.test.ts' }, ...enabled.map((s) => ({ name: s.name, file: '__test__/parity/differential-servers.test.ts' }))].map(
        (s) => ({
          extends: true,
          test: { name: `${s.name}-bridge`, include: [s.file], env: { KAVACH_TEST_PROVIDER: s.name, KAVACH_TEST_BRIDGE: '1' } },
        }),
      ),
    ],
  },
})
