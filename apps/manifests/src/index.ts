export { ManifestsModule } from './manifests.module';
export { ManifestsAppModule } from './app.module';
export { ManifestsHandler } from './http/manifests.handler';
export { main as startManifests } from './main';
