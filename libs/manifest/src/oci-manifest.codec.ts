import { descriptorArray, optionalDescriptor, requiredDescriptor } from './descriptor';
import { field, optionalMediaType, optionalStringMap } from './json-fields';
import { ManifestCodec } from './manifest-codec';
import { OCI_MANIFEST_MEDIA_TYPE } from './media-types';

/**
 * OCI image manifest (image-spec 1.1 manifest.md): `config` required; `layers` may be empty
 * and, leniently, absent; optional `artifactType`, `subject` and `annotations`. Inferred for a
 * body without a media type when it has a `config`.
 */
export const ociManifestCodec: ManifestCodec = {
  mediaType: OCI_MANIFEST_MEDIA_TYPE,
  kind: 'manifest',
  sniff: (body) => field(body, 'config') !== undefined,
  decode: (body, limits) => ({
    artifactType: optionalMediaType(body, 'artifactType', ''),
    config: requiredDescriptor(body, 'config', ''),
    layers: descriptorArray(body, 'layers', { required: false, maxCount: limits.maxDescriptors }),
    subject: optionalDescriptor(body, 'subject', ''),
    annotations: optionalStringMap(body, 'annotations', ''),
  }),
};
