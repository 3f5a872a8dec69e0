module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'manifest',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
  passWithNoTests: true,
};
