export * from './blob-storage.port';
export * from './storage.error';
export * from './filesystem.driver';
export * from './memory.driver';
export * from './blob-storage.suite';
export { KeyedSerializer } from './blob-storage.support';
