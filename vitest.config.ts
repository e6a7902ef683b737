import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// Files that share kernel or machine state never overlap with another file of
// their lane: anything that creates network namespaces, changes iptables,
// starts Envoy, or binds fixed ports in the root namespace. A file takes its
// lane's lock (test/helpers/lane-lock.ts) before it runs. The lanes share
// nothing with each other (each namespace carries its test's own tag; ports
// come from per-run random blocks), so the three lanes and the unit files run
// side by side. Everything else (pure logic, loopback sockets on ephemeral
// ports, Unix sockets in a temp dir, `envoy --mode validate`) is a unit file.
// A new file that starts Envoy or touches namespaces belongs in a lane.
const LANES: Record<string, string[]> = {
  // Rules and probes in namespaces; no Envoy.
  netns: ['test/iptables/netns-*.test.ts'],
  // Pods of meshlet and Envoy in namespaces.
  e2e: ['test/e2e/**/*.test.ts'],
  // meshlet run, Envoy alone, DNS in namespaces, the bench.
  host: ['test/run/**/*.test.ts', 'test/envoy/{boot,capture,inbound,portless}.test.ts', 'test/dns/{e2e,loop}.test.ts', 'test/bench/**/*.test.ts'],
};

/**
 * Queue order: the first file of each lane, then the unit files, then the
 * rest of the lanes round-robin. A lane file waits for its lane in a worker
 * slot, so interleaving keeps every lane's next file already waiting while
 * the others run.
 */
class LaneSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const lanes = Object.keys(LANES).map((name) => sorted.filter((f) => f.project.name === name));
    const unit = sorted.filter((f) => !(f.project.name in LANES));
    const out = lanes.flatMap((l) => l.slice(0, 1));
    out.push(...unit);
    for (let i = 1; lanes.some((l) => i < l.length); i++) for (const l of lanes) if (i < l.length) out.push(l[i] as TestSpecification);
    return out;
  }
}

const shared = { testTimeout: 60_000, hookTimeout: 60_000 };

export default defineConfig({
  test: {
    // Lane files mostly wait (on timeouts, Envoy, the kernel), and a waiting
    // lane file holds a slot, so there are more workers than cores.
    maxWorkers: 8,
    sequence: { sequencer: LaneSequencer },
    projects: [
      { test: { ...shared, name: 'unit', include: ['test/**/*.test.ts'], exclude: Object.values(LANES).flat() } },
      ...Object.entries(LANES).map(([name, include]) => ({
        test: { ...shared, name, include, setupFiles: ['test/helpers/lane-setup.ts'], env: { MESHLET_TEST_LANE: name } },
      })),
    ],
  },
});
