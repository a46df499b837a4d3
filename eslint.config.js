import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/', 'node_modules/', 'coverage/', 'bench/.work/', 'oclif.manifest.json']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {globals: {process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', fetch: 'readonly', setImmediate: 'readonly', structuredClone: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', queueMicrotask: 'readonly'}},
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none'}],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', {selector: "CallExpression[callee.object.name='process'][callee.property.name='exit']", message: 'Library code never calls process.exit; throw a CanaryError (src/errors.ts).'}],
    },
  },
  {
    // The rollout core is a pure reducer: no I/O, no frameworks (STYLE.md point 1).
    files: ['src/rollout/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          {group: ['node:*', 'fs', 'http', 'https', 'net', 'child_process', 'os', 'path', 'crypto', 'events', 'stream', 'timers', 'cluster', 'dgram', 'dns', 'tls', 'url', 'util', 'zlib', 'worker_threads'], message: 'src/rollout/core is pure: do I/O in the engine or an adapter.'},
          {group: ['@kubernetes/*', '@oclif/*', 'prom-client', 'undici', 'yaml', 'zod', 'chalk', 'kubernetes-models', 'kubernetes-models/*', '@kubernetes-models/*'], message: 'src/rollout/core is pure: no frameworks or clients.'},
          {group: ['../*', '!./*'], message: 'src/rollout/core imports only from itself.'},
        ],
      }],
      'no-restricted-globals': ['error', {name: 'fetch', message: 'No I/O in the core.'}, {name: 'setTimeout', message: 'Time comes from the Observation, not timers.'}, {name: 'Date', message: 'Time comes from the Observation (Clock at the edge).'}],
    },
  },
  {
    // bin/ is CommonJS (bin/package.json) so the CLI starts without the ES module loader.
    files: ['bin/**/*.js'],
    languageOptions: {sourceType: 'commonjs', globals: {require: 'readonly', __dirname: 'readonly'}},
    rules: {'@typescript-eslint/no-require-imports': 'off'},
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.{ts,js}', 'scripts/**/*.{ts,js}'],
    rules: {'no-restricted-syntax': 'off', '@typescript-eslint/no-non-null-assertion': 'off'},
  },
)
