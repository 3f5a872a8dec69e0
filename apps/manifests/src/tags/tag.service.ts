import { Injectable } from '@nestjs/common';
import { NameUnknownError, PaginationNumberInvalidError } from '@lading/contracts';
import { TagRepository } from './tag.repository';

/** One page of a listing and the `last` to continue from, when more remain. */
export interface Page {
  items: string[];
  next?: { last: string; n: number };
}

/** Hard cap on one page, whatever `n` asks for. */
export const MAX_PAGE = 10_000;

/** Tag and catalog listings with the spec's `n`/`last` pagination. */
@Injectable()
export class TagService {
  constructor(private readonly tags: TagRepository) {}

  /** The tags of `name`; NAME_UNKNOWN when the repository does not exist. */
  async listTags(name: string, n: string | null, last: string | null): Promise<Page> {
    const limit = parseN(n, MAX_PAGE);
    if (!(await this.tags.repositoryExists(name))) throw new NameUnknownError(name);
    return paginate(limit, (l) => this.tags.listTags(name, l, last ?? undefined));
  }

  /** The repositories of the registry. */
  async listRepositories(n: string | null, last: string | null): Promise<Page> {
    const limit = parseN(n, 1000);
    return paginate(limit, (l) => this.tags.listRepositories(l, last ?? undefined));
  }
}

function parseN(n: string | null, fallback: number): number {
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
