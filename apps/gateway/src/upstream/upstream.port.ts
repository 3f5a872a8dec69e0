/** Injection token of the handler that serves blob and upload routes (in process or over HTTP). */
export const BLOB_UPLOAD_UPSTREAM = Symbol('BLOB_UPLOAD_UPSTREAM');
/** Injection token of the handler that serves manifest, tag, referrers and catalog routes. */
export const MANIFESTS_UPSTREAM = Symbol('MANIFESTS_UPSTREAM');
