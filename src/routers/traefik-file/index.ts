/**
 * Traefik's file provider (`spec.ingress.router: traefik-file`): the dynamic configuration in a
 * ConfigMap that Traefik mounts and watches (objects.ts). Traefik reads it from a file, so canary
 * cannot drive it on a cluster; it is rendered for GitOps and for the local proxy's users.
 */
import {ConfigError} from '../../errors.js'
import type {RouterDefinition} from '../router-definition.js'
import {traefikQuotingProblems} from '../traefik/index.js'
import {buildTraefikFile} from './objects.js'

export const TRAEFIK_FILE = {
  kind: 'traefik-file',
  limits: {},
  validate: ({headerTexts}) => [
    ...traefikQuotingProblems('traefik-file', headerTexts),
    // Traefik evaluates file-provider files as Go templates (docs: "Go Templating").
    ...(headerTexts.some((text) => text.includes('{{') || text.includes('}}'))
      ? [{at: ['spec', 'match', 'header'], message: 'router traefik-file cannot match a header name, value or pattern containing "{{" or "}}": Traefik evaluates file-provider configuration as a Go template', suggestion: 'use a value without double braces (a regex can write {2} instead of repeating)'}]
      : []),
  ],
  build: buildTraefikFile,
  rbac: {rules: () => []},
  kubeRouter: () => {
    throw new ConfigError('router traefik-file: not supported on the Kubernetes target', [{path: 'spec.ingress.router', message: 'traefik-file needs Traefik to read a file; on a cluster use traefik (CRDs) or traefik-v1'}], {
      suggestions: ['Set spec.ingress.router to traefik, traefik-v1, nginx, gateway-api or proxy.'],
    })
  },
} as const satisfies RouterDefinition
