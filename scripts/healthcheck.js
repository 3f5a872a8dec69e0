#!/usr/bin/env node
// Container health check for images without curl or wget: `node scripts/healthcheck.js PORT [PATH]`
// exits 0 when http://127.0.0.1:PORT/PATH (default /healthz/ready) answers 2xx within 2 s, else 1.
const [port = '5000', path = '/healthz/ready'] = process.argv.slice(2);
fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) }).then(
  (res) => process.exit(res.ok ? 0 : 1),
  () => process.exit(1),
);
