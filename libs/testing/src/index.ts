export * from './images';
export * from './registry-client';
export * from './hostile';
export * from './hostile-runner';
export * from './blob-storage.suite';
export * from './event-bus.suite';
export * from './eventually';
export * from './registry-events';
