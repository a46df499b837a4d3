#!/usr/bin/env node
// CommonJS (bin/package.json), so that starting the CLI does not set up Node's ES module loader.
// Loads the built CLI (dist/cli/canary.cjs) through a V8 code cache: see src/cli/boot.ts.
const {join} = require('node:path')

require('../dist/cli/boot.cjs').boot(join(__dirname, '..'))
