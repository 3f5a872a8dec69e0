// The integration tier: real PostgreSQL, Kafka, MinIO, real clients and the conformance suite,
// started by `scripts/services start` (see README). Each suite makes its own database and
// folders, so suites do not share state.
module.exports = {
  ...require('./jest.preset.js'),
  displayName: 'integration',
  rootDir: __dirname,
  testMatch: ['<rootDir>/test/**/*.int-spec.ts', '<rootDir>/libs/**/*.int-spec.ts', '<rootDir>/apps/**/*.int-spec.ts'],
  testTimeout: 300_000,
};
