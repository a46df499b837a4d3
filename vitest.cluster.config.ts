import {defineConfig} from 'vitest/config'

// The cluster suite: a real etcd + kube-apiserver + Traefik + Prometheus from `npm run cluster:up`
// (reused when already up, otherwise started and stopped by the global setup). One file at a time:
// the files share one Traefik and the harness's pods.
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    globalSetup: ['test/cluster/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
})
