import { type RequestScope } from '@lading/contracts';

/** The repository a scope acts on; blob and upload operations always have one (the gateway checked). */
export function repositoryOf(scope: RequestScope): string {
  if (scope.repository === null) throw new Error(`operation ${scope.operation} has no repository`);
  return scope.repository;
}
