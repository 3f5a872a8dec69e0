/** Header names used across the /v2 API and between services. */
export const Headers = {
  apiVersion: 'docker-distribution-api-version',
  contentDigest: 'docker-content-digest',
  uploadUuid: 'docker-upload-uuid',
  ociSubject: 'oci-subject',
  ociFiltersApplied: 'oci-filters-applied',
  requestId: 'x-request-id',
  /** Signed by the gateway so a service can tell forwarded traffic from a bare request. */
  internalAuth: 'x-lading-internal',
  /** The request scope the gateway built (base64url JSON), covered by the internal signature. */
  internalScope: 'x-lading-scope',
  /** Every internal header starts with this; the gateway strips any a client sends. */
  internalPrefix: 'x-lading-',
  traceparent: 'traceparent',
} as const;

/** The value of Docker-Distribution-API-Version that every response carries. */
export const API_VERSION = 'registry/2.0';
