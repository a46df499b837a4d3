import {describe, expect, it} from 'vitest'

import {imageRefProblem, parseImageRef, resolveCanaryImage} from '../../src/release/image-ref.js'

const DIGEST = 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'

describe('parseImageRef follows the distribution/reference grammar', () => {
  it.each([
    ['nginx', {domain: undefined, repository: 'nginx', tag: undefined}],
    ['nginx:1.27', {repository: 'nginx', tag: '1.27'}],
    ['ghcr.io/acme/my-app:v1', {domain: 'ghcr.io', path: 'acme/my-app', tag: 'v1'}],
    ['localhost:5000/web:dev', {domain: 'localhost:5000', path: 'web', tag: 'dev'}],
    [`registry.local:5000/web@${DIGEST}`, {repository: 'registry.local:5000/web', tag: undefined, digest: DIGEST}],
    [`ghcr.io/acme/app:v1@${DIGEST}`, {tag: 'v1', digest: DIGEST}],
  ])('parses %s', (ref, expected) => {
    expect(parseImageRef(ref)).toMatchObject({...expected, ref})
  })

  it.each([
    ['', /empty/],
    ['ghcr.io/Acme/app:v1', /lower-case/],
    ['app:v1:v2', /invalid/],
    ['app:-bad', /invalid tag/],
    ['app@sha256:1234', /digest/],
    ['my app:v1', /whitespace/],
    ['ghcr.io/', /no repository/],
  ])('refuses %j', (ref, message) => {
    expect(imageRefProblem(ref)).toMatch(message)
  })
})

describe('resolveCanaryImage turns --image into the canary image', () => {
  const stable = 'ghcr.io/acme/my-app:v1'
  it('applies a bare tag to the stable repository', () => {
    expect(resolveCanaryImage(stable, 'v2').ref).toBe('ghcr.io/acme/my-app:v2')
  })
  it('applies a digest, with or without @, to the stable repository', () => {
    expect(resolveCanaryImage(stable, DIGEST).ref).toBe(`ghcr.io/acme/my-app@${DIGEST}`)
    expect(resolveCanaryImage(stable, `@${DIGEST}`).ref).toBe(`ghcr.io/acme/my-app@${DIGEST}`)
  })
  it('uses a full reference as is', () => {
    expect(resolveCanaryImage(stable, 'ghcr.io/other/app:v9').ref).toBe('ghcr.io/other/app:v9')
    expect(resolveCanaryImage(stable, 'nginx:1.27').ref).toBe('nginx:1.27')
  })
  it('keeps a registry port when applying a tag', () => {
    expect(resolveCanaryImage('localhost:5000/web:v1', 'v2').ref).toBe('localhost:5000/web:v2')
  })
  it('refuses a bad tag or digest with a message', () => {
    expect(() => resolveCanaryImage(stable, '-v2')).toThrow(/image tag "-v2" is not valid/)
    expect(() => resolveCanaryImage(stable, 'sha256:xyz')).toThrow(/digest/)
  })
})
