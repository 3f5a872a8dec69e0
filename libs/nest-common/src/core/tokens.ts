/** Injection token of the validated LadingConfig. */
export const LADING_CONFIG = Symbol('LADING_CONFIG');
/** Injection token of the BlobStorage driver. */
export const BLOB_STORAGE = Symbol('BLOB_STORAGE');
/** Injection token of the readiness checks collected by the health endpoint. */
export const READINESS_CHECKS = Symbol('READINESS_CHECKS');
