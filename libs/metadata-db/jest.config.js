module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'metadata-db',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
  passWithNoTests: true,
};
