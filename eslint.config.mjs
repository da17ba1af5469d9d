// @ts-check
import eslint from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist-tools/**',
      '.dist-*/**',
      'node_modules/**',
      'src/generated/**',
      'coverage/**',
      'eslint.config.mjs',
      '.dependency-cruiser.cjs',
      'prisma/prisma.config.ts',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message: 'Read configuration through AppConfig (src/config).',
        },
      ],
    },
  },
  { files: ['**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  {
    // The dashboard's browser script (served as is, docs/decisions/0012): no types, browser globals.
    files: ['src/dashboard/views/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'script',
      globals: Object.fromEntries(
        ['window', 'document', 'navigator', 'setTimeout', 'Element', 'HTMLFormElement'].map(
          (name) => [name, 'readonly'],
        ),
      ),
    },
  },
  {
    files: ['src/main.ts', 'src/config/**', 'src/ops/**', 'tools/**', 'test/**', '**/*.spec.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
);
