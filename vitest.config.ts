import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Network-namespace and Envoy tests share the kernel's iptables state; run files one at a time.
    fileParallelism: false,
  },
});
