import { descriptorArray } from './descriptor';
import { ManifestCodec } from './manifest-codec';
import { DOCKER_MANIFEST_LIST_MEDIA_TYPE } from './media-types';

/**
 * Docker manifest list (schema 2): `manifests` required. The spec asks every entry for a
 * `platform`; we accept entries without one, as lenient registries do. Never inferred.
 */
export const dockerManifestListCodec: ManifestCodec = {
  mediaType: DOCKER_MANIFEST_LIST_MEDIA_TYPE,
  kind: 'index',
  decode: (body, limits) => ({
    manifests: descriptorArray(body, 'manifests', { required: true, maxCount: limits.maxDescriptors }),
  }),
};
