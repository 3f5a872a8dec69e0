import { descriptorArray, optionalDescriptor } from './descriptor';
import { field, optionalMediaType, optionalStringMap } from './json-fields';
import { ManifestCodec } from './manifest-codec';
import { OCI_INDEX_MEDIA_TYPE } from './media-types';

/**
 * OCI image index (image-spec 1.1 image-index.md): `manifests` required (may be empty);
 * optional `artifactType`, `subject` and `annotations`. Inferred for a body without a media
 * type when it has `manifests`.
 */
export const ociIndexCodec: ManifestCodec = {
  mediaType: OCI_INDEX_MEDIA_TYPE,
  kind: 'index',
  sniff: (body) => field(body, 'manifests') !== undefined,
  decode: (body, limits) => ({
    artifactType: optionalMediaType(body, 'artifactType', ''),
    manifests: descriptorArray(body, 'manifests', { required: true, maxCount: limits.maxDescriptors }),
    subject: optionalDescriptor(body, 'subject', ''),
    annotations: optionalStringMap(body, 'annotations', ''),
  }),
};
