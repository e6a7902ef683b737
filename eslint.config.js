import tseslint from 'typescript-eslint';

// Modules that do I/O, refused in the pure core (builders, config). node:net
// only for its address predicates.
const IO_MODULES = [
  'fs',
  'fs/promises',
  'child_process',
  'http',
  'https',
  'http2',
  'dgram',
  'dns',
  'dns/promises',
  'tls',
  'worker_threads',
  'cluster',
  'readline',
  'inspector',
  'process',
];
const FILE_IO = new Set(['node:fs', 'fs', 'node:fs/promises', 'fs/promises']);
const PURE_IO_PATHS = [
  ...IO_MODULES.flatMap((m) => [`node:${m}`, m]).map((name) => ({
    name,
    message: 'builders and config are pure: no I/O (pass the data in; the caller reads it)',
  })),
  ...['node:net', 'net'].map((name) => ({
    name,
    allowImportNames: ['isIP', 'isIPv4', 'isIPv6'],
    message: 'builders and config are pure: only the address predicates of node:net',
  })),
];
// The modules above the core: what runs it, serves it, or talks to processes.
const PURE_ABOVE_PATTERNS = [
  {
    group: [
      '**/run/*',
      '**/cli/*',
      '**/cli.js',
      '**/debug/*',
      '**/demo/*',
      '**/reload/*',
      '**/envoy/*',
      '**/dns/index.js',
      '**/dns/server.js',
      '**/dns/forward.js',
      '**/xds/server.js',
      '**/xds/grpc.js',
      '**/xds/socket.js',
      '**/xds/service.js',
      '**/xds/reflect.js',
      '**/iptables/runner.js',
      '**/iptables/apply.js',
      '**/iptables/init.js',
    ],
    message: 'builders and config sit below this module: it must not be imported from here',
  },
];

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
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...['node:http', 'http'].map((name) => ({
              name,
              allowTypeImports: true,
              message: "use process.getBuiltinModule('node:http'): the ESM import loads undici, http2 and zlib (about 10 MiB resident)",
            })),
            // The same for node:util: its ESM wrapper reads every export, which loads worker_threads (about 1 MiB resident).
            ...['node:util', 'util'].map((name) => ({
              name,
              allowTypeImports: true,
              message: "use process.getBuiltinModule('node:util'): the ESM import loads worker_threads (about 1 MiB resident)",
            })),
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'fetch', message: 'fetch loads undici (about 10 MiB resident in the sidecar); use node:http through process.getBuiltinModule' },
        { name: 'performance', message: 'the global performance loads perf_hooks (about 0.7 MiB resident in the sidecar); time with process.hrtime.bigint()' },
      ],
    },
  },
  {
    // The pure core: builders turn a MeshConfig into Envoy JSON and config
    // turns text into a MeshConfig, with no I/O and no knowledge of the
    // modules that run them, so they stay testable as plain functions and
    // cannot start doing I/O by accident. The config's I/O edge (load.ts
    // reads the files, trust.ts keeps the version floor, write-json-schema.ts
    // and validate-gen.ts are build scripts) may read and write files, nothing above it.
    files: ['src/xds/builders/**/*.ts', 'src/config/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { paths: PURE_IO_PATHS, patterns: PURE_ABOVE_PATTERNS }],
      'no-restricted-properties': ['error', { object: 'process', property: 'getBuiltinModule', message: 'builders and config do no I/O' }],
    },
  },
  {
    files: ['src/config/load.ts', 'src/config/trust.ts', 'src/config/write-json-schema.ts', 'src/config/validate-gen.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { paths: PURE_IO_PATHS.filter((p) => !FILE_IO.has(p.name)), patterns: PURE_ABOVE_PATTERNS }],
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
);
