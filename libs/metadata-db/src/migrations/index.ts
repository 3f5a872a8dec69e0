import { InitialSchema1764270000000 } from './1764270000000-initial-schema';

/** Every migration, oldest first. Only migrations change the schema. */
export const METADATA_MIGRATIONS = [InitialSchema1764270000000];
