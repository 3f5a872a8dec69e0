import { Module } from '@nestjs/common';
import { ManifestsHandler } from './http/manifests.handler';
import { ManifestCache } from './manifests/manifest.cache';
import { ManifestRepository } from './manifests/manifest.repository';
import { ManifestService } from './manifests/manifest.service';
import { TagRepository } from './tags/tag.repository';
import { TagService } from './tags/tag.service';

/**
 * The manifests bounded contexts (manifests, tags, referrers, catalog) and their /v2 handler,
 * without an HTTP listener. Needs LadingCoreModule in the app.
 */
@Module({
  providers: [ManifestCache, ManifestRepository, ManifestService, TagRepository, TagService, ManifestsHandler],
  exports: [ManifestsHandler],
})
export class ManifestsModule {}
