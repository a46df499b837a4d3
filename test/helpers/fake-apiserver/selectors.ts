/** Label and field selectors as `kubectl get -l` understands them (equality, set and existence forms). */

type Requirement = (labels: Readonly<Record<string, string>>) => boolean

/** Parses `app=web,tier!=db,env in (a,b),!legacy,track` into one predicate. */
export function parseLabelSelector(selector: string | null): Requirement {
  if (selector === null || selector.trim() === '') return () => true
  const parts = selector.match(/[^,(]+(\([^)]*\))?/g) ?? []
  const requirements: Requirement[] = parts.map((raw) => {
    const part = raw.trim().replace(/^,/, '').trim()
    let m = /^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part)
    if (m !== null) {
      const [, key = '', op, list = ''] = m
      const values = list.split(',').map((v) => v.trim())
      return op === 'in' ? (l) => l[key] !== undefined && values.includes(l[key]) : (l) => l[key] === undefined || !values.includes(l[key])
    }
    m = /^([^\s!=]+)\s*(==|=|!=)\s*(\S*)$/.exec(part)
    if (m !== null) {
      const [, key = '', op, value] = m
      return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value
    }
    if (part.startsWith('!')) return (l) => l[part.slice(1)] === undefined
    return (l) => l[part] !== undefined
  })
  return (labels) => requirements.every((r) => r(labels))
}

/** Supports the field selectors clients use on watches: `metadata.name=x`, `metadata.namespace=y`. */
export function parseFieldSelector(selector: string | null): (object: {metadata?: {name?: string; namespace?: string}}) => boolean {
  if (selector === null || selector.trim() === '') return () => true
  const requirements = selector.split(',').map((part) => {
    const m = /^([^!=]+)(==|=|!=)(.*)$/.exec(part.trim())
    if (m === null) return () => true
    const [, field, op, value] = m
    const read = (o: {metadata?: {name?: string; namespace?: string}}) => (field === 'metadata.name' ? o.metadata?.name : field === 'metadata.namespace' ? o.metadata?.namespace : undefined)
    return op === '!=' ? (o: {metadata?: {name?: string; namespace?: string}}) => read(o) !== value : (o: {metadata?: {name?: string; namespace?: string}}) => read(o) === value
  })
  return (object) => requirements.every((r) => r(object))
}
