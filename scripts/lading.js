#!/usr/bin/env node
// The `lading` command. It runs the compiled JavaScript in dist/, rebuilding it first (in a
// short-lived child, so SWC's native compiler never stays resident) whenever a source is newer.
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { isStale } = require('./build.js');

if (isStale()) {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'build.js')], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
// Tracing first: its instrumentations patch http, express, pg, kafkajs… as they are first
// required, which the requires below do. Off (nothing loaded) unless OTEL_* asks for it.
const tracing = require('../dist/libs/nest-common/src/telemetry/tracing.js');
try {
  tracing.startTracing(tracing.serviceNameFor(process.argv.slice(2)));
} catch (e) {
  console.error(`starting tracing failed: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
}

const { ConfigInvalidError } = require('../dist/libs/nest-common/src/index.js');
require('../dist/apps/lading/src/main.js')
  .run(process.argv.slice(2))
  .catch((e) => {
    console.error(e instanceof ConfigInvalidError ? e.message : e instanceof Error ? e.stack || e.message : e);
    process.exit(1);
  });
