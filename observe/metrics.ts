/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the
 * text exposition format. Upstream's metric names (namespace `kube_router_`) are kept where
 * they exist so existing dashboards work.
 *
 * @module
 */

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(",");
}

function escapeLabel(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

abstract class Metric {
  constructor(readonly name: string, readonly help: string, readonly type: string) {}
  abstract render(): string[];
}

/**
 * A metric without labels always has its one series (client_golang exports a plain counter or
 * gauge as 0 before its first change); a labelled one has a series per label set seen.
 */
function renderValues(name: string, values: Map<string, number>, labelNames: readonly string[]): string[] {
  if (values.size === 0 && labelNames.length === 0) return [`${name} 0`];
  return [...values].map(([k, v]) => `${name}${k ? `{${k}}` : ""} ${v}`);
}

export class Counter extends Metric {
  private values = new Map<string, number>();
  constructor(name: string, help: string, readonly labelNames: readonly string[] = []) {
    super(name, help, "counter");
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    return renderValues(this.name, this.values, this.labelNames);
  }
}

export class Gauge extends Metric {
  private values = new Map<string, number>();
  constructor(name: string, help: string, readonly labelNames: readonly string[] = []) {
    super(name, help, "gauge");
  }
  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value);
  }
  /** Drops every labelled series, for gauges rebuilt from scratch each sync (e.g. peer info). */
  reset(): void {
    this.values.clear();
  }
  get(labels: Labels = {}): number | undefined {
    return this.values.get(labelKey(labels));
  }
  render(): string[] {
    return renderValues(this.name, this.values, this.labelNames);
  }
}

/** Prometheus client_golang's `DefBuckets` (upstream's histograms set none, so they get these). */
const defaultBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Histogram extends Metric {
  private counts: number[];
  private sum = 0;
  private count = 0;
  constructor(name: string, help: string, readonly buckets: number[] = defaultBuckets) {
    super(name, help, "histogram");
    this.counts = buckets.map(() => 0);
  }
  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    this.buckets.forEach((b, i) => {
      if (seconds <= b) this.counts[i]++;
    });
  }
  /** Times an async function and observes its duration, even when it throws. */
  async time<T>(fn: () => Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await fn();
    } finally {
      this.observe((performance.now() - start) / 1000);
    }
  }
  render(): string[] {
    const lines = this.buckets.map((b, i) => `${this.name}_bucket{le="${b}"} ${this.counts[i]}`);
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`);
    lines.push(`${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines;
  }
}

/** Refreshes metrics read from elsewhere (the kernel's per-service counters) just before a scrape. */
export type Collector = () => Promise<void>;

/** Holds every metric of the process; `counter`/`gauge`/`histogram` return the existing one by name. */
export class MetricsRegistry {
  private metrics = new Map<string, Metric>();
  private collectors: Collector[] = [];

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.getOrAdd(name, () => new Counter(name, help, labelNames)) as Counter;
  }
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.getOrAdd(name, () => new Gauge(name, help, labelNames)) as Gauge;
  }
  /** Exports a metric that lives outside the registry (the process-wide problem counters). */
  adopt(metric: Counter | Gauge | Histogram): void {
    this.metrics.set(metric.name, metric);
  }
  addCollector(c: Collector): void {
    this.collectors.push(c);
  }
  /** Runs every collector; one that fails leaves its metrics as they were and does not stop the rest. */
  async collect(): Promise<void> {
    await Promise.allSettled(this.collectors.map((c) => c()));
  }
  histogram(name: string, help: string, buckets?: number[]): Histogram {
    return this.getOrAdd(name, () => new Histogram(name, help, buckets)) as Histogram;
  }

  private getOrAdd(name: string, make: () => Metric): Metric {
    let m = this.metrics.get(name);
    if (!m) {
      m = make();
      this.metrics.set(name, m);
    }
    return m;
  }

  /** The text exposition format (version 0.0.4). */
  render(): string {
    const out: string[] = [];
    for (const m of [...this.metrics.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      out.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.render());
    }
    return out.join("\n") + "\n";
  }
}
