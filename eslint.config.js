import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.venv/**'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    // The sidecar's memory: the ESM wrapper of node:http reads every export,
    // and the lazy ones load undici, http2, zlib and more (about 10 MiB
    // resident). Take it with process.getBuiltinModule('node:http'); types may
    // still be imported. Global fetch() loads the same (undici).
    files: ['src/**/*.ts'],
    ignores: ['src/demo/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { paths: ['node:http', 'http'].map((name) => ({ name, allowTypeImports: true, message: "use process.getBuiltinModule('node:http'): the ESM import loads undici, http2 and zlib (about 10 MiB resident)" })) }],
      'no-restricted-globals': ['warn', { name: 'fetch', message: 'fetch loads undici (about 10 MiB resident in the sidecar); use node:http through process.getBuiltinModule' }],
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
