// Lint rules: typescript-eslint's recommended set, with `any` forbidden in the library.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'tmp/**', 'tools/reference/.venv/**', 'converted_models/**', 'spec/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['lib/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['bin/**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // The service's page: plain browser JavaScript (no build step).
    files: ['assets/web/**/*.js'],
    languageOptions: { globals: { document: 'readonly', fetch: 'readonly', URL: 'readonly', EventSource: 'readonly', FormData: 'readonly' } },
  },
);
