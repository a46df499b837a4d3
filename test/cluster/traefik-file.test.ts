/**
 * Router `traefik-file`: real Traefik's file provider reading exactly what `canary render` writes
 * (the dynamic configuration in the ConfigMap's data), as a Traefik pod that mounts it would. The
 * Traefik runs in a pod network namespace so the rendered server URLs
 * (`http://<service>.<ns>.svc.cluster.local:8080`) resolve, through the pods' hosts files, to the
 * backends' pods. Each step of the plan, then promote (stable only) and abort, measured.
 */
import {mkdirSync, renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterEach, describe, expect, it} from 'vitest'

import {runInPod} from '../../scripts/cluster/pods.js'
import {canary as runCanary} from '../helpers/lifecycle.js'
import {aClusterRelease, cluster, measuredSplit, serve, type ClusterRelease, type KubeJson} from './fixture.js'

let release: ClusterRelease | undefined

afterEach(async () => {
  await release?.dispose()
  release = undefined
})

/** `canary render ARGS` for the release, and the file-provider configuration inside its ConfigMap. */
async function renderedDynamicConfig(r: ClusterRelease, args: readonly string[]): Promise<{file: string; text: string}> {
  const render = await runCanary(['render', '--json', ...args], r.dir)
  expect(render.code, render.stderr).toBe(0)
  const objects = (render.json as {steps: {objects: KubeJson[]}[]}).steps[0]!.objects
  const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'web-traefik')!
  const [file, text] = Object.entries(configMap.data as Record<string, string>)[0]!
  return {file, text}
}

describe('router traefik-file: Traefik\'s file provider reading what canary renders', () => {
  it('every step, promote and abort: the split Traefik serves is the rendered one', async () => {
    release = await aClusterRelease('traefik-file')
    const r = release
    await serve(r, 'web', 'v1')
    await serve(r, 'web-canary', 'v2')
    const dynamic = join(r.dir, 'traefik-dynamic')
    mkdirSync(dynamic)
    const write = async (args: readonly string[]) => {
      const {file, text} = await renderedDynamicConfig(r, args)
      // Replace the file in one rename, as the kubelet swaps a mounted ConfigMap: a write in place
      // lets Traefik's watcher read a truncated file, load an empty configuration and answer 404.
      const staged = join(r.dir, `${file}.next`)
      writeFileSync(staged, text)
      renameSync(staged, join(dynamic, file))
    }
    await write(['--image', 'v2', '--step', '1'])
    const traefikPod = await r.leasePod()
    const traefik = await runInPod(traefikPod, cluster.binaries.traefik, [
      '--global.checkNewVersion=false', '--global.sendAnonymousUsage=false', '--entryPoints.web.address=:8000',
      `--providers.file.directory=${dynamic}`, '--providers.file.watch=true', '--log.level=INFO',
    ], /Starting provider \*file\.Provider|Configuration loaded/)
    r.processes.push(traefik)
    const entry = `http://${traefikPod.ip}:8000`
    for (const [args, canaryPercent] of [[['--image', 'v2', '--step', '1'], 10], [['--image', 'v2', '--step', '2'], 50], [['--image', 'v2', '--weight', '25'], 25]] as const) {
      await write(args)
      const split = await measuredSplit(entry, {host: r.host}, canaryPercent)
      expect(split.other, JSON.stringify(split)).toBe(0)
      expect(Math.abs(split.canary - canaryPercent * 10), JSON.stringify(split)).toBeLessThanOrEqual(10)
    }
    // Promoted or aborted, the render has no canary: all stable.
    await write([])
    expect(await measuredSplit(entry, {host: r.host}, 0)).toEqual({canary: 0, stable: 1000, other: 0})
  })
})
