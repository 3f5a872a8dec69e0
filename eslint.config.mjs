import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

/**
 * Dependencies point one way: apps -> nest/data-access/contracts -> domain.
 * `type:domain` libs (reference, manifest) import no framework; within the domain, only
 * `scope:reference` (libs/reference: the grammar, the digest parser and its errors) may be
 * imported, and it imports no lib at all. So manifest builds on reference, never the reverse.
 */
export default [
  { ignores: ['**/node_modules', '**/dist', '**/data', '**/tmp', '**/coverage', '**/*.js', '**/*.mjs'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          // The `lading` app composes the others into one process (embedded mode) and its CLI.
          allow: ['@lading/app-*'],
          depConstraints: [
            { sourceTag: 'scope:reference', onlyDependOnLibsWithTags: [] },
            { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['scope:reference'], bannedExternalImports: ['@nestjs/*', 'typeorm', 'kafkajs', 'minio', 'pg', '@electric-sql/*', 'fs', 'node:fs', 'node:fs/promises', 'fs/promises', 'node:http', 'http'] },
            { sourceTag: 'type:contracts', onlyDependOnLibsWithTags: ['type:domain'], bannedExternalImports: ['@nestjs/*', 'typeorm', 'kafkajs', 'minio', 'pg'] },
            { sourceTag: 'type:data-access', onlyDependOnLibsWithTags: ['type:domain', 'type:contracts'] },
            { sourceTag: 'type:nest', onlyDependOnLibsWithTags: ['type:domain', 'type:contracts', 'type:data-access'] },
            { sourceTag: 'type:testing', onlyDependOnLibsWithTags: ['type:domain', 'type:contracts', 'type:data-access', 'type:nest'] },
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:domain', 'type:contracts', 'type:data-access', 'type:nest', 'type:testing', 'type:app'] },
          ],
        },
      ],
    },
  },
  {
    // Only the lading app (embedded composition and CLI) may import other apps.
    files: ['apps/**/*.ts', 'libs/**/*.ts'],
    ignores: ['apps/lading/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['@lading/app-*'] }] },
  },
];
