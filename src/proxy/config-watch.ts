/**
 * Reload triggers from the file system: the config file itself, and the certificate, key and CA
 * files it names. Both watch directories, so a file replaced by `mv` or an editor is seen.
 */
import {watch, type FSWatcher} from 'node:fs'
import {basename, dirname, resolve} from 'node:path'

/** Calls `onChange` (debounced) when the file is written or replaced (editors and `mv` replace it). */
export function watchFile(file: string, onChange: () => void): FSWatcher {
  const absolute = resolve(file)
  let timer: NodeJS.Timeout | undefined
  const watcher = watch(dirname(absolute), (_event, name) => {
    if (name !== null && name !== basename(absolute)) return
    clearTimeout(timer)
    timer = setTimeout(onChange, 100)
  })
  watcher.unref()
  return watcher
}

/**
 * Watches a changing set of files (certificates, keys, CA bundles) and calls `onChange`, debounced
 * so that a rotation writing the certificate and then the key reloads once. It watches the
 * directories, so files replaced by `mv` or an editor are seen, and a Kubernetes Secret volume's
 * `..data` symlink swap too (its files are links through `..data`).
 */
export class FileSetWatcher {
  private watchers: FSWatcher[] = []
  private timer: NodeJS.Timeout | undefined
  private key = ''

  constructor(private readonly onChange: () => void) {}

  set(files: readonly string[]): void {
    const key = [...files].sort().join('\n')
    if (key === this.key) return
    this.close()
    this.key = key
    const byDirectory = new Map<string, Set<string>>()
    for (const file of files) {
      const absolute = resolve(file)
      const names = byDirectory.get(dirname(absolute)) ?? new Set<string>()
      names.add(basename(absolute))
      byDirectory.set(dirname(absolute), names)
    }
    for (const [directory, names] of byDirectory) {
      try {
        const watcher = watch(directory, (_event, name) => {
          if (name !== null && !names.has(name) && !name.startsWith('..')) return
          clearTimeout(this.timer)
          this.timer = setTimeout(this.onChange, 100)
        })
        watcher.unref()
        this.watchers.push(watcher)
      } catch {
        // A directory that vanished: the next reload reports the missing file.
      }
    }
  }

  close(): void {
    clearTimeout(this.timer)
    for (const watcher of this.watchers) watcher.close()
    this.watchers = []
    this.key = ''
  }
}
