export * from './entities/registry.entity';
export * from './migrations';
export * from './metadata-db';
export { createPgliteDriver } from './pglite.driver';
export * from './registry.sql';
export * from './manifest-payload';
