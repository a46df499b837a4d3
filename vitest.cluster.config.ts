import {defineConfig} from 'vitest/config'

// The cluster suite: a real etcd + kube-apiserver + Traefik + Prometheus from `npm run cluster:up`
// (reused when already up, otherwise started and stopped by the global setup, which is the root's
// alone: a project that inherited it would start a second harness).
// Most files run at once, each test in its own namespace with pods leased for it alone
// (test/cluster/fixture.ts); the API server and Traefik are shared. faults.test.ts stops the API
// server, so it runs after all the others, alone.
// A test's clock runs while it waits for the CPU its concurrent neighbours (and, on a shared
// machine, other programs) use: seen at 300 s for a 12 s test with the load average at 25.
const timeouts = {testTimeout: 600_000, hookTimeout: 600_000}

export default defineConfig({
  test: {
    globalSetup: ['test/cluster/global-setup.ts'],
    projects: [
      {
        test: {
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          exclude: ['test/cluster/faults.test.ts'],
          // Three files at a time on 2 cores, and up to three tests at once in the files that say
          // `describe.concurrent` (their tests mostly wait on the judge): more only queues on the CPU.
          maxWorkers: 3,
          maxConcurrency: 3,
          sequence: {groupOrder: 0},
          ...timeouts,
        },
      },
      {
        test: {
          name: 'cluster-faults',
          include: ['test/cluster/faults.test.ts'],
          sequence: {groupOrder: 1},
          ...timeouts,
        },
      },
    ],
  },
})
