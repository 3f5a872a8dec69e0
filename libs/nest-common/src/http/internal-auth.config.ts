import { Logger } from '@nestjs/common';
import { ConfigInvalidError, type LadingConfig } from '../config/lading.config';

/** The apps at either end of the gateway's internal hop in split mode. */
export type InternalHopApp = 'gateway' | 'blob-upload' | 'manifests';

/**
 * Why `config` cannot run `app` in split mode, or undefined: the internal hop needs `http.secret`
 * unless `http.insecure` says explicitly to run without one.
 */
export function internalAuthProblem(config: LadingConfig, app: InternalHopApp): string | undefined {
  if (config.http.secret || config.http.insecure) return undefined;
  return (
    `http.secret: \`lading serve ${app}\` (split mode) needs the secret the gateway signs forwarded requests with: ` +
    'set LADING_HTTP_SECRET to the same random value (16 characters or more, e.g. `openssl rand -hex 32`) for every app, ' +
    'or LADING_HTTP_INSECURE=true to run unauthenticated on a network you trust'
  );
}

/**
 * The secret of `app`'s internal hop, checked at start.
 * @throws ConfigInvalidError when there is none and `http.insecure` is not set.
 * Returns undefined in insecure mode, after logging a loud warning.
 */
export function internalAuthSecret(config: LadingConfig, app: InternalHopApp): string | undefined {
  const problem = internalAuthProblem(config, app);
  if (problem) throw new ConfigInvalidError([problem]);
  if (!config.http.secret) {
    const what = app === 'gateway' ? 'forwards requests to the services unsigned' : 'accepts unsigned requests from anyone who can reach it';
    Logger.warn(
      `INSECURE MODE (http.insecure without http.secret): ${app} ${what}. Anyone on this network can act as the gateway. ` +
        'Set LADING_HTTP_SECRET on every app to turn request signing on.',
      'Lading',
    );
  }
  return config.http.secret;
}
