#!/usr/bin/env node
// The `lading` command: runs the TypeScript sources through SWC (decorator metadata on, the
// workspace's path aliases resolved), so `npm start` needs no build step.
const path = require('node:path');
process.env.SWC_NODE_PROJECT ??= path.join(__dirname, '..', 'tsconfig.base.json');
require('@swc-node/register');
const { ConfigInvalidError } = require('../libs/nest-common/src/index.ts');
require('../apps/lading/src/main.ts')
  .run(process.argv.slice(2))
  .catch((e) => {
    console.error(e instanceof ConfigInvalidError ? e.message : e instanceof Error ? e.stack || e.message : e);
    process.exit(1);
  });
