// How much work each row does. `full` is what RESULTS.md reports; `tiny`
// only proves the harness runs end to end (the test suite uses it).

export interface Size {
  name: 'full' | 'tiny';
  /** Row 2: timed starts of each variant, after one untimed warm-up of each when `warmUp`. */
  startReps: number;
  warmUp: boolean;
  /** Row 3: config edits. */
  reloadEdits: number;
  /** Row 4: rotations, and the steady-state window before them. */
  rotations: number;
  rotationSteadyMs: number;
  /** Row 5: interleaved rounds over the three variants, seconds per wrk run, connections per latency loop. */
  datapathRounds: number;
  wrkSeconds: number;
  /** Also measure bulk transfer (256 KiB answers). */
  datapathBulk: boolean;
  latencyConns: number;
  /** Row 6. */
  scalePorts: number;
  scaleRoutes: number;
  scaleReps: number;
  /** Settle time before reading RSS after a scale step. */
  scaleSettleMs: number;
  /** How long a cold start at scale may take to turn /ready 200 after every type is ACKed. */
  scaleReadyWaitMs: number;
  /** Row 7. */
  footprintReps: number;
  idleSettleMs: number;
  idleCpuMs: number;
  phaseReps: number;
}

export const FULL: Size = {
  name: 'full',
  // Twenty rounds: this VM's speed moves by tens of percent within minutes, and a start lasts a tenth of a second.
  startReps: 20,
  warmUp: true,
  reloadEdits: 100,
  rotations: 100,
  rotationSteadyMs: 5_000,
  datapathRounds: 7,
  wrkSeconds: 2,
  datapathBulk: true,
  latencyConns: 300,
  scalePorts: 1_000,
  scaleRoutes: 1_000,
  scaleReps: 3,
  scaleSettleMs: 1_000,
  scaleReadyWaitMs: 15_000,
  footprintReps: 3,
  idleSettleMs: 2_000,
  idleCpuMs: 5_000,
  phaseReps: 5,
};

export const TINY: Size = {
  name: 'tiny',
  startReps: 1,
  warmUp: false,
  reloadEdits: 4,
  rotations: 3,
  rotationSteadyMs: 300,
  datapathRounds: 1,
  wrkSeconds: 1,
  datapathBulk: false,
  latencyConns: 10,
  scalePorts: 10,
  scaleRoutes: 10,
  scaleReps: 1,
  scaleSettleMs: 100,
  scaleReadyWaitMs: 5_000,
  footprintReps: 1,
  idleSettleMs: 200,
  idleCpuMs: 500,
  // The memory run of the phase probe still runs; the timed runs are skipped.
  phaseReps: 0,
};
