module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'blob-upload',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
  passWithNoTests: true,
};
