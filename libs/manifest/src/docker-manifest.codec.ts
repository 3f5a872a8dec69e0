import { descriptorArray, requiredDescriptor } from './descriptor';
import { ManifestCodec } from './manifest-codec';
import { DOCKER_MANIFEST_MEDIA_TYPE } from './media-types';

/**
 * Docker image manifest v2 schema 2: `config` and `layers` required. The schema has no
 * `subject`, `artifactType` or `annotations`; such fields are ignored like any unknown field.
 * Never inferred: a body must name this type (field or `Content-Type`).
 */
export const dockerManifestCodec: ManifestCodec = {
  mediaType: DOCKER_MANIFEST_MEDIA_TYPE,
  kind: 'manifest',
  decode: (body, limits) => ({
    config: requiredDescriptor(body, 'config', ''),
    layers: descriptorArray(body, 'layers', { required: true, maxCount: limits.maxDescriptors }),
  }),
};
