import { NameUnknownError, systemScope } from '@lading/contracts';
import type { MetadataDb } from '@lading/metadata-db';
import { TAG_STREAM_BATCH, TagService } from './tag.service';

/** A MetadataDb whose tag store pages through `tags` (already in byte order) and records each call. */
function fakeDb(tags: string[], { listed = true } = {}) {
  const calls: { limit: number; after?: string }[] = [];
  const listTags = async (_name: string, limit: number, after?: string) => {
    calls.push({ limit, after });
    const from = after === undefined ? 0 : tags.findIndex((t) => t > after);
    return from < 0 ? [] : tags.slice(from, from + limit);
  };
  const db = { read: { tags: { listTags }, repositories: { hasTagListing: async () => listed } } };
  return { calls, db: db as unknown as MetadataDb };
}

const names = (count: number) => Array.from({ length: count }, (_, i) => `t${String(i).padStart(6, '0')}`);
const scope = systemScope('tags.list', 'a/b');

describe('TagService.streamTags (the full tag list as keyset batches)', () => {
  it('asks the store for one batch per step, each after the last name of the one before', async () => {
    const tags = names(2 * TAG_STREAM_BATCH + 5);
    const { calls, db } = fakeDb(tags);
    const stream = new TagService(db).streamTags(scope, null);
    const first = await stream.next();
    // Lazy: one query for the first batch, nothing more until the next one is asked for.
    expect(calls).toEqual([{ limit: TAG_STREAM_BATCH, after: undefined }]);
    expect(first.value).toEqual(tags.slice(0, TAG_STREAM_BATCH));
    const rest: string[] = [];
    for await (const batch of stream) rest.push(...batch);
    expect([...(first.value as string[]), ...rest]).toEqual(tags);
    expect(calls).toEqual([
      { limit: TAG_STREAM_BATCH, after: undefined },
      { limit: TAG_STREAM_BATCH, after: tags[TAG_STREAM_BATCH - 1] },
      { limit: TAG_STREAM_BATCH, after: tags[2 * TAG_STREAM_BATCH - 1] },
    ]);
  });

  it('starts after `last`, and ends with one empty query when the list is a whole number of batches', async () => {
    const tags = names(TAG_STREAM_BATCH + 1);
    const { calls, db } = fakeDb(tags);
    const batches: string[][] = [];
    for await (const b of new TagService(db).streamTags(scope, tags[0])) batches.push(b);
    expect(batches).toEqual([tags.slice(1)]);
    expect(calls.map((c) => c.after)).toEqual([tags[0], tags[TAG_STREAM_BATCH]]);
  });

  it('yields nothing for an empty listing, and NAME_UNKNOWN before anything for a repository without one', async () => {
    const empty: string[][] = [];
    for await (const b of new TagService(fakeDb([]).db).streamTags(scope, null)) empty.push(b);
    expect(empty).toEqual([]);
    await expect(new TagService(fakeDb([], { listed: false }).db).streamTags(scope, null).next()).rejects.toBeInstanceOf(NameUnknownError);
  });
});
