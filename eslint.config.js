import { builtinModules } from 'node:module';
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
const FILE_IO = new Set(['fs', 'fs/promises']);
// A value import of a node built-in (see the src/**/*.ts block below for why).
const BUILTIN_VALUE_IMPORTS = builtinModules
  .flatMap((m) => (m.startsWith('node:') ? [m] : [`node:${m}`, m]))
  .map((name) => ({
    name,
    allowTypeImports: true,
    message: "take node built-ins with process.getBuiltinModule('node:…'): the ESM import reads every export, and the lazy ones load more (eslint.config.js)",
  }));
/** The pure core's rule on process.getBuiltinModule: no I/O module but `allowed`, and only the address predicates of node:net. */
function pureBuiltins(allowed = new Set()) {
  const io = IO_MODULES.filter((m) => !allowed.has(m)).map((m) => m.replace('/', '.'));
  const take = (what) => `CallExpression[callee.object.name='process'][callee.property.name='getBuiltinModule'][arguments.0.value=${what}]`;
  const net = "VariableDeclarator[init.callee.property.name='getBuiltinModule'][init.arguments.0.value='node:net']";
  return [
    'error',
    { selector: take(`/^node:(${io.join('|')})$/`), message: 'builders and config are pure: no I/O (pass the data in; the caller reads it)' },
    {
      selector: `${net} > ObjectPattern > Property[key.name!=/^isIP(v4|v6)?$/]`,
      message: 'builders and config are pure: only the address predicates of node:net',
    },
    {
      // Any other use of the module than destructuring it (a whole-module binding, a member of the call, an argument).
      selector: ":not(VariableDeclarator[id.type='ObjectPattern']) > " + take("'node:net'"),
      message: 'builders and config are pure: take only the address predicates of node:net, by destructuring',
    },
  ];
}
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
    // Start-up time and the sidecar's memory: the ESM wrapper of a node
    // built-in reads every export, and the lazy ones load more. node:fs loads
    // fs/promises and readline (about 6 ms at start), node:crypto webcrypto,
    // node:util worker_threads (about 1 MiB resident), node:http undici, http2
    // and zlib (about 10 MiB resident). So src/ takes built-ins with
    // process.getBuiltinModule('node:…'), which returns the module itself;
    // types may still be imported. Global fetch() loads undici too.
    files: ['src/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { paths: BUILTIN_VALUE_IMPORTS }],
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
      '@typescript-eslint/no-restricted-imports': ['error', { paths: BUILTIN_VALUE_IMPORTS, patterns: PURE_ABOVE_PATTERNS }],
      'no-restricted-syntax': pureBuiltins(),
    },
  },
  {
    files: ['src/config/load.ts', 'src/config/trust.ts', 'src/config/write-json-schema.ts', 'src/config/validate-gen.ts'],
    rules: {
      'no-restricted-syntax': pureBuiltins(FILE_IO),
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
