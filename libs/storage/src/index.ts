export * from './blob-storage.port';
export * from './storage.error';
export * from './storage.layout';
export * from './filesystem.driver';
export * from './memory.driver';
export * from './s3.driver';
export * from './storage.factory';
export * from './instrumented.driver';
export { KeyedSerializer, isSendableBlobStream, sendBlob } from './blob-storage.support';
