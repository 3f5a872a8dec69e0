import { Inject, Injectable } from '@nestjs/common';
import { NameInvalidError, NameUnknownError, PaginationNumberInvalidError, RegistryError, type RequestScope } from '@lading/contracts';
import { MetadataDb } from '@lading/metadata-db';
import { repositoryOf } from '../scope';

/** One page of a listing and the `last` to continue from, when more remain. */
export interface Page {
  items: string[];
  next?: { last: string; n: number };
}

/** Hard cap on one page, whatever `n` asks for. */
export const MAX_PAGE = 10_000;

/** Tags per query of a streamed tag list: 100 queries for 100,000 tags, about 20 KB each. */
export const TAG_STREAM_BATCH = 1000;

/** Tag and catalog listings with the spec's `n`/`last` pagination. Every method takes the request scope first. */
@Injectable()
export class TagService {
  constructor(@Inject(MetadataDb) private readonly db: MetadataDb) {}

  /** One page of the tags of the scope's repository; NAME_UNKNOWN when no manifest was ever pushed to it. */
  async listTags(scope: RequestScope, n: string | null, last: string | null): Promise<Page> {
    const repository = repositoryOf(scope);
    const limit = parseN(n, MAX_PAGE);
    assertTagLast(last);
    const page = await paginate(limit, (l) => this.db.read.tags.listTags(repository, l, last ?? undefined));
    // Tags exist only in a repository a manifest was pushed to: only an empty page needs the check.
    if (page.items.length === 0) await this.assertTagListing(repository);
    return page;
  }

  /**
   * Every tag of the scope's repository after `last`, in byte order, as batches of at most
   * {@link TAG_STREAM_BATCH}: one keyset query per batch, each on a pooled connection only for as
   * long as the query runs, so a slow or vanished reader holds no connection (and no snapshot:
   * a tag pushed or deleted meanwhile may or may not be listed, none twice). NAME_UNKNOWN, before
   * the first batch, when no manifest was ever pushed to the repository.
   */
  async *streamTags(scope: RequestScope, last: string | null): AsyncGenerator<string[], void, undefined> {
    const repository = repositoryOf(scope);
    assertTagLast(last);
    let after = last ?? undefined;
    for (let first = true; ; first = false) {
      const batch = await this.db.read.tags.listTags(repository, TAG_STREAM_BATCH, after);
      if (first && batch.length === 0) await this.assertTagListing(repository);
      if (batch.length > 0) yield batch;
      if (batch.length < TAG_STREAM_BATCH) return;
      after = batch[batch.length - 1];
    }
  }

  private async assertTagListing(repository: string): Promise<void> {
    if (!(await this.db.read.repositories.hasTagListing(repository))) throw new NameUnknownError(repository);
  }

  /** The repositories of the registry. */
  async listRepositories(_scope: RequestScope, n: string | null, last: string | null): Promise<Page> {
    const limit = parseN(n, 1000);
    if (last?.includes('\u0000')) throw new NameInvalidError(last, 'last is not a repository name');
    return paginate(limit, (l) => this.db.read.repositories.listRepositories(l, last ?? undefined));
  }
}

function assertTagLast(last: string | null): void {
  if (last?.includes('\u0000')) throw new RegistryError('TAG_INVALID', 'last is not a tag', { last });
}

/** Parses `n`: absent is `fallback`; anything but a non-negative integer is PAGINATION_NUMBER_INVALID; capped at MAX_PAGE. */
export function parseN(n: string | null, fallback: number): number {
  if (n === null || n === '') return fallback;
  if (!/^\d+$/.test(n)) throw new PaginationNumberInvalidError(n);
  return Math.min(Number(n), MAX_PAGE);
}

async function paginate(limit: number, fetch: (limit: number) => Promise<string[]>): Promise<Page> {
  if (limit === 0) return { items: [] };
  const rows = await fetch(limit + 1);
  if (rows.length <= limit) return { items: rows };
  const items = rows.slice(0, limit);
  return { items, next: { last: items[items.length - 1], n: limit } };
}
