/**
 * Imported first by each app's own entry point (`node dist/apps/<app>/src/main.js`): starts
 * tracing, as `scripts/lading.js` does for the command line, before the entry point's other
 * imports load what the instrumentations patch. Does nothing when the process's entry point is
 * not an app's `main` (the app imported by the command line, or by a test).
 */
import { serviceNameOfEntry, startTracing } from './tracing';

const serviceName = serviceNameOfEntry(require.main?.filename, process.argv.slice(2));
if (serviceName) startTracing(serviceName);
