// A tiny Prometheus text-format registry: counters and one histogram kind are
// all meshlet exposes, so a client library would be more weight than value.

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${(labels[k] ?? '').replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`;
}

export class Counter {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels)) ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${v}`);
    return lines.join('\n');
  }
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {
    this.counts = buckets.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count += 1;
    this.buckets.forEach((b, i) => {
      if (v <= b) this.counts[i] = (this.counts[i] ?? 0) + 1;
    });
  }

  get total(): number {
    return this.count;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i] ?? 0}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

export class Gauge {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  set(v: number, labels: Labels = {}): void {
    this.values.set(labelText(labels), v);
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${v}`);
    return lines.join('\n');
  }
}

/** Every metric meshlet exports. */
export class Metrics {
  readonly pushes = new Counter('meshlet_xds_pushes_total', 'xDS responses sent to Envoy, by type');
  readonly acks = new Counter('meshlet_xds_acks_total', 'xDS responses Envoy ACKed, by type');
  readonly nacks = new Counter('meshlet_xds_nacks_total', 'xDS responses Envoy NACKed, by type');
  readonly reloads = new Counter('meshlet_reloads_total', 'Config and certificate reloads applied, by kind');
  readonly reloadErrors = new Counter('meshlet_reload_errors_total', 'Config and certificate reloads refused, by kind');
  readonly envoyRestarts = new Counter('meshlet_envoy_restarts_total', 'Times the supervisor restarted Envoy');
  readonly ready = new Gauge('meshlet_ready', '1 when iptables are in place, Envoy ACKed every type and its listeners are active');
  readonly changeToAck = new Histogram(
    'meshlet_change_to_ack_seconds',
    'Time from a config or certificate change to Envoy ACKing it',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );

  private readonly collectors: (() => string)[] = [];

  /** Metrics another component keeps itself (the DNS server's counters), rendered on each scrape. */
  addCollector(render: () => string): void {
    this.collectors.push(render);
  }

  render(): string {
    const own = [this.pushes, this.acks, this.nacks, this.reloads, this.reloadErrors, this.envoyRestarts, this.ready, this.changeToAck].map((m) => m.render());
    return `${[...own, ...this.collectors.map((c) => c())].join('\n')}\n`;
  }
}

/** Prometheus text for a set of counters kept as plain numbers, one label per key. */
export function renderCounters(name: string, help: string, label: string, values: Readonly<Record<string, number>>): string {
  const c = new Counter(name, help);
  for (const [k, v] of Object.entries(values)) c.inc({ [label]: k }, v);
  return c.render();
}
