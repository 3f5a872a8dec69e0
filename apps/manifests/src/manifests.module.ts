import { Module } from '@nestjs/common';
import { ManifestsHandler } from './http/manifests.handler';
import { ManifestCache } from './manifests/manifest.cache';
import { ManifestService } from './manifests/manifest.service';
import { TagService } from './tags/tag.service';

/**
 * The manifests bounded contexts (manifests, tags, referrers, catalog) and their /v2 handler,
 * without an HTTP listener. Needs LadingCoreModule in the app.
 */
@Module({
  providers: [ManifestCache, ManifestService, TagService, ManifestsHandler],
  exports: [ManifestsHandler],
})
export class ManifestsModule {}
