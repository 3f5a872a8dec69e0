import { RangeInvalidError } from '@lading/contracts';
import { parseByteRange } from './blob.service';

describe('parseByteRange', () => {
  it.each([
    ['bytes=0-9', 100, { start: 0, end: 9 }],
    ['bytes=10-', 100, { start: 10, end: 99 }],
    ['bytes=-10', 100, { start: 90, end: 99 }],
    ['bytes=90-200', 100, { start: 90, end: 99 }],
    ['bytes=-500', 100, { start: 0, end: 99 }],
    ['bytes=0-0,5-6', 100, { start: 0, end: 0 }],
  ])('%s of %d bytes', (header, size, expected) => {
    expect(parseByteRange(header, size)).toEqual(expected);
  });
  it.each(['items=0-1', 'bytes=-', 'bytes=a-b'])('ignores %s (serves the whole body)', (header) => {
    expect(parseByteRange(header, 100)).toBeUndefined();
  });
  it.each(['bytes=100-', 'bytes=50-10', 'bytes=-0'])('refuses %s with RANGE_INVALID', (header) => {
    expect(() => parseByteRange(header, 100)).toThrow(RangeInvalidError);
  });
});
