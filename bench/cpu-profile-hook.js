// Loaded with NODE_OPTIONS="--require bench/cpu-profile-hook.js" (see bench/ab-gets.ts): SIGWINCH (which Nest's
// shutdown hooks leave alone) starts a CPU profile (node:inspector, 200 us sampling); the next writes
// /tmp/rq-prof/<pid>-<n>.cpuprofile. --cpu-prof cannot serve here: it writes only at a clean exit.
const inspector = require('node:inspector');
const fs = require('node:fs');
fs.mkdirSync('/tmp/rq-prof', { recursive: true });
let session, n = 0;
process.on('SIGWINCH', () => {
  if (!session) {
    session = new inspector.Session();
    session.connect();
    session.post('Profiler.enable', () => session.post('Profiler.setSamplingInterval', { interval: 200 }, () => session.post('Profiler.start')));
    return;
  }
  const s = session;
  session = undefined;
  s.post('Profiler.stop', (err, { profile }) => {
    if (!err) fs.writeFileSync(`/tmp/rq-prof/${process.pid}-${n++}.cpuprofile`, JSON.stringify(profile));
    s.disconnect();
  });
});
