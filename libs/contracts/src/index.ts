export * from './oci.error';
export * from './v2-route';
export * from './headers';
export * from './events';
export * from './operations';
export * from './request-scope';
export * from './crash-point';
export * from './telemetry';
