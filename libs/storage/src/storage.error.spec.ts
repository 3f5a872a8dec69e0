import { OCI_ERROR_STATUS, isOciCoded, ociErrorBody, ociErrorStatus, type OciErrorCode } from '@lading/contracts';
import {
  BlobNotFoundError,
  InvalidStorageKeyError,
  RangeNotSatisfiableError,
  StorageError,
  UploadNotFoundError,
  UploadOffsetMismatchError,
} from './storage.error';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const UPLOAD_ID = '0f8fad5b-d9cb-469f-a165-70867728950e';

describe('storage errors carry their OCI code, status and detail', () => {
  it.each<[string, StorageError, OciErrorCode, number, unknown]>([
    ['BlobNotFoundError', new BlobNotFoundError(DIGEST), 'BLOB_UNKNOWN', 404, { digest: DIGEST }],
    ['UploadNotFoundError', new UploadNotFoundError(UPLOAD_ID), 'BLOB_UPLOAD_UNKNOWN', 404, { uploadId: UPLOAD_ID }],
    ['UploadOffsetMismatchError', new UploadOffsetMismatchError(UPLOAD_ID, 10, 4), 'RANGE_INVALID', 416, { size: 4, offset: 10 }],
    ['RangeNotSatisfiableError', new RangeNotSatisfiableError({ start: 9, end: 12 }, 5), 'RANGE_INVALID', 416, { range: { start: 9, end: 12 }, size: 5 }],
    ['RangeNotSatisfiableError with a malformed bound', new RangeNotSatisfiableError({ start: NaN, end: 1 }, 5), 'RANGE_INVALID', 416, { range: { start: null, end: 1 }, size: 5 }],
    ['InvalidStorageKeyError for a digest', new InvalidStorageKeyError('digest', 'sha256:../x'), 'DIGEST_INVALID', 400, { digest: 'sha256:../x' }],
    ['InvalidStorageKeyError for an upload id', new InvalidStorageKeyError('uploadId', '../x'), 'BLOB_UPLOAD_UNKNOWN', 404, { uploadId: '../x' }],
  ])('%s', (name, error, code, status, detail) => {
    expect(error).toBeInstanceOf(StorageError);
    expect(error.name).toBe(name.split(' ')[0]);
    expect(error.ociCode).toBe(code);
    expect(error.httpStatus).toBe(status);
    expect(error.detail).toEqual(detail);
    // What the OCI error filter does with it: the status agrees with the one table, the body is JSON.
    expect(isOciCoded(error)).toBe(true);
    expect(OCI_ERROR_STATUS[code]).toBe(status);
    expect(ociErrorStatus(error)).toBe(status);
    expect(JSON.parse(JSON.stringify(ociErrorBody(error)))).toEqual({
      errors: [{ code, message: error.message, detail }],
    });
  });

  it('echoes only an excerpt of a huge invalid key', () => {
    const error = new InvalidStorageKeyError('digest', 'x'.repeat(100_000));
    expect(error.message.length).toBeLessThan(200);
    expect(JSON.stringify(error.detail).length).toBeLessThan(200);
  });
});
