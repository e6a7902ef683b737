import { defineConfig } from 'vitest/config';

// Files that share kernel or machine state run one at a time: anything that
// creates network namespaces, changes iptables, starts Envoy, or binds fixed
// ports in the root namespace. Everything else (pure logic, loopback sockets
// on ephemeral ports, Unix sockets in a temp dir, `envoy --mode validate`)
// runs in parallel. A new file that starts Envoy or touches namespaces
// belongs in SERIAL.
const SERIAL = [
  'test/e2e/**/*.test.ts',
  'test/iptables/netns-*.test.ts',
  'test/envoy/{boot,capture,inbound,portless}.test.ts',
  'test/run/**/*.test.ts',
  'test/dns/{e2e,loop}.test.ts',
  'test/bench/**/*.test.ts',
];

const shared = { testTimeout: 60_000, hookTimeout: 60_000 };

export default defineConfig({
  test: {
    projects: [
      { test: { ...shared, name: 'unit', include: ['test/**/*.test.ts'], exclude: SERIAL } },
      { test: { ...shared, name: 'serial', include: SERIAL, fileParallelism: false } },
    ],
  },
});
