/**
 * Hostile and unusual inputs for the two YAML loaders (release spec, proxy config), as one table
 * that test/release/hostile-input.test.ts and test/proxy/hostile-input.test.ts run against the
 * loader, the built CLI and (for the proxy) the admin reload endpoint. Each case is built from a
 * valid document of the loader under test, so that only the hostile part can be refused.
 */
import {execFileSync} from 'node:child_process'
import {once} from 'node:events'
import {mkdirSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {createServer, type Server} from 'node:net'

/** A valid document of one loader, and how to put a value into one of its boolean fields. */
export interface ValidDocument {
  readonly text: string
  /** The document with its boolean field set to `value` (written as is). */
  readonly withBoolean: (value: string) => string
}

export interface HostileCase {
  readonly name: string
  /** The file's content. */
  readonly content: (base: ValidDocument) => string | Buffer
  /** Matched against a problem's message or suggestion (and the CLI's stderr). Absent: accepted. */
  readonly refused?: RegExp
  /** Line of that problem. */
  readonly line?: (base: ValidDocument) => number
}

const lines = (text: string) => text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
/** Appends `extra` as top-level content; `at` is the line within `extra` (1-based) the problem is on. */
const appended = (extra: string) => (base: ValidDocument) => base.text + extra
const lineOfAppended = (at: number) => (base: ValidDocument) => lines(base.text) + at

/** "Billion laughs": 9 levels of 9 aliases each, 387 million values written out. */
const LAUGHS = ['x-lol:', '  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]', ...'bcdefghi'.split('').map((name, i) => `  ${name}: &${name} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(', ')}]`)].join('\n') + '\n'

export const HOSTILE_CASES: readonly HostileCase[] = [
  // The alias that brings the total past 100,000 values is the 2nd of level f (9^5 + … > 100,000) on line 7.
  {name: 'an alias bomb ("billion laughs")', content: appended(LAUGHS), refused: /aliases expand to more than 100000 values/, line: lineOfAppended(7)},
  {name: 'a huge anchor aliased many times', content: appended(`x-big: &big [${Array(20_000).fill('v').join(', ')}]\nx-copies: [*big, *big, *big, *big, *big, *big]\n`), refused: /aliases expand to more than 100000 values/, line: lineOfAppended(2)},
  {name: 'an alias inside the value it names', content: appended('x-loop: &loop [a, *loop]\n'), refused: /alias \*loop is inside the value it refers to: a recursive structure/, line: lineOfAppended(1)},
  {name: 'an alias without an anchor', content: appended('x-nothing: *missing\n'), refused: /alias \*missing has no anchor &missing before it/, line: lineOfAppended(1)},
  {name: 'flow lists nested 100,000 deep', content: appended(`x-deep: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`), refused: /nested more than 64 levels deep/, line: lineOfAppended(1)},
  {name: 'block lists nested 100,000 deep on one line', content: appended(`x-deep:\n${'- '.repeat(100_000)}x\n`), refused: /nested more than 64 levels deep/, line: lineOfAppended(2)},
  {name: 'mappings nested 70 deep by indentation', content: appended(`${Array.from({length: 70}, (_, i) => `${'  '.repeat(i)}k${i}:`).join('\n')} x\n`), refused: /nested more than 64 levels deep/},
  {name: 'nesting that is deep only with aliases expanded', content: appended(`x-a: &a ${'['.repeat(40)}${']'.repeat(40)}\nx-b: ${'['.repeat(30)}*a${']'.repeat(30)}\n`), refused: /with this alias expanded, lists and mappings are nested more than 64 levels deep/, line: lineOfAppended(2)},
  {name: 'a merge key whose value is not a mapping', content: appended('x-merge: {<<: [1, 2]}\n'), refused: /merge key << takes a mapping or a list of mappings/, line: lineOfAppended(1)},
  {name: 'two merge keys in one mapping', content: appended('x-m: &m {a: 1}\nx-merge: {<<: *m, <<: *m}\n'), refused: /duplicate key "<<"/, line: lineOfAppended(2)},
  {name: 'a duplicate key', content: appended('x-dup: 1\nx-dup: 2\n'), refused: /duplicate key "x-dup": each key may appear once per mapping/, line: lineOfAppended(2)},
  {name: 'keys 1 and "1" (the same key once read)', content: appended('x-keys: {1: a, "1": b}\n'), refused: /duplicate key "1"/, line: lineOfAppended(1)},
  {name: '10,000 duplicate keys (problems capped)', content: appended(`x-dups:\n${'  k: v\n'.repeat(10_000)}`), refused: /… and \d+ more problems from here on \(only the first 100 are listed\)/},
  {name: 'bytes that are not UTF-8', content: (base) => Buffer.concat([Buffer.from(`${base.text}x-latin1: caf`), Buffer.from([0xe9]), Buffer.from('\n')]), refused: /is not valid UTF-8: byte 0xe9 at byte offset \d+/, line: lineOfAppended(1)},
  {name: 'UTF-16 text', content: (base) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(base.text, 'utf16le')]), refused: /is UTF-16 .*expected UTF-8/, line: () => 1},
  {name: 'a UTF-8 byte order mark', content: (base) => `\ufeff${base.text}`},
  {name: 'a tab as indentation', content: appended('x-tabs:\n\tk: v\n'), refused: /YAML syntax error: Tabs are not allowed as indentation/, line: lineOfAppended(2)},
  {name: 'a second document', content: appended('---\nx-second: 1\n'), refused: /a second YAML document starts here: expected one document per file/},
  {name: 'a YAML 1.1 boolean (yes) in a boolean field', content: (base) => base.withBoolean('yes'), refused: /YAML 1\.2 reads yes as a string: write true or false/},
  {name: 'a YAML 1.1 boolean (on) in a boolean field', content: (base) => base.withBoolean('on'), refused: /YAML 1\.2 reads on as a string: write true or false/},
  {name: 'a %YAML 1.1 directive', content: (base) => `%YAML 1.1\n---\n${base.text}`, refused: /%YAML 1\.1 is not supported: canary reads YAML 1\.2/, line: () => 1},
  {name: 'a binary tag', content: appended('x-bin: !!binary aGVsbG8=\n'), refused: /tag !!binary is not supported/, line: lineOfAppended(1)},
  {name: 'a !!js/function tag', content: appended('x-fn: !!js/function "function () { return 1 }"\n'), refused: /tag !!js\/function is not supported/, line: lineOfAppended(1)},
  {name: 'a custom tag', content: appended('x-env: !env HOME\n'), refused: /tag !env is not supported/, line: lineOfAppended(1)},
  {name: 'a !!set tag', content: appended('x-set: !!set {a, b}\n'), refused: /tag !!set is not supported/, line: lineOfAppended(1)},
  {name: 'a NUL character', content: appended('x-nul: a\u0000b\n'), refused: /character U\+0000 is not allowed in YAML/, line: lineOfAppended(1)},
  {name: 'an escape character', content: appended('x-esc: \u001b[31mred\n'), refused: /character U\+001B is not allowed in YAML/, line: lineOfAppended(1)},
  {name: 'a key longer than YAML allows for an implicit key', content: appended(`${'k'.repeat(2000)}: v\n`), refused: /YAML syntax error: The : indicator must be at most 1024 chars/, line: lineOfAppended(1)},
  {name: 'a list or mapping as a key', content: appended('? [a, b]\n: v\n'), refused: /a mapping key must be a plain value, not a list, a mapping or an alias/, line: lineOfAppended(1)},
  {name: 'a file over 1 MiB', content: appended(`x-pad: "${'p'.repeat(1024 * 1024)}"\n`), refused: /over the 1 MiB limit/},
  {name: 'a broken flow mapping', content: appended('x-broken: {a: [1, 2}\n'), refused: /YAML syntax error/},
]

/** Non-regular files put where the spec or config is expected. `make` creates it at `path`; the returned function cleans up. */
export interface SpecialFile {
  readonly name: string
  readonly make: (path: string) => Promise<() => Promise<void>>
  readonly refused: RegExp
}

export const SPECIAL_FILES: readonly SpecialFile[] = [
  {name: 'a FIFO nobody writes to', make: async (path) => (execFileSync('mkfifo', [path]), async () => rmSync(path)), refused: /is a FIFO \(named pipe\), not a regular file/},
  {name: 'a directory', make: async (path) => (mkdirSync(path), async () => rmSync(path, {recursive: true})), refused: /is a directory, not a regular file/},
  {name: 'a symlink to an endless device (/dev/zero)', make: async (path) => (symlinkSync('/dev/zero', path), async () => rmSync(path)), refused: /is a character device, not a regular file/},
  {name: 'a symlink to /dev/null', make: async (path) => (symlinkSync('/dev/null', path), async () => rmSync(path)), refused: /is a character device, not a regular file/},
  {
    name: 'a listening Unix socket',
    make: async (path) => {
      const server: Server = createServer()
      server.listen(path)
      await once(server, 'listening')
      return async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()))
        rmSync(path, {force: true})
      }
    },
    refused: /is not a regular file \(a socket/,
  },
]

/** Writes a case's content to `path` (replacing whatever is there). */
export function writeCase(path: string, content: string | Buffer): void {
  rmSync(path, {recursive: true, force: true})
  writeFileSync(path, content)
}
