import { Injectable } from '@nestjs/common';

/** One check's outcome: whether it passes, and what it reports (JSON, shown in the health body). */
export interface HealthCheckResult {
  ok: boolean;
  report: unknown;
}

/** A health check; a rejection counts as a failure reporting its message. */
export type HealthCheck = () => Promise<HealthCheckResult>;

/** What a health endpoint answers: passing when every check passes, and each check's report. */
export interface HealthOutcome {
  ok: boolean;
  checks: Record<string, unknown>;
}

/**
 * The checks behind `/healthz/live` and `/healthz/ready` that modules add (the database check is
 * built in): a module registers what its own work depends on, e.g. the relay its broker and
 * backlog. Liveness checks should fail only when a restart would help.
 */
@Injectable()
export class HealthChecks {
  private readonly checks = { live: new Map<string, HealthCheck>(), ready: new Map<string, HealthCheck>() };

  /** Adds (or replaces) readiness check `name`. */
  addReadiness(name: string, check: HealthCheck): void {
    this.checks.ready.set(name, check);
  }

  /** Adds (or replaces) liveness check `name`. */
  addLiveness(name: string, check: HealthCheck): void {
    this.checks.live.set(name, check);
  }

  /** Runs every check of `kind` at once. */
  async run(kind: 'live' | 'ready'): Promise<HealthOutcome> {
    const entries = await Promise.all(
      [...this.checks[kind]].map(async ([name, check]) => {
        try {
          return [name, await check()] as const;
        } catch (e) {
          return [name, { ok: false, report: (e as Error).message }] as const;
        }
      }),
    );
    return { ok: entries.every(([, r]) => r.ok), checks: Object.fromEntries(entries.map(([name, r]) => [name, r.report])) };
  }
}
