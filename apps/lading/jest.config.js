module.exports = {
  ...require('../../jest.preset.js'),
  displayName: 'lading',
  rootDir: __dirname,
  testMatch: ['<rootDir>/src/**/*.spec.ts'],
  passWithNoTests: true,
};
