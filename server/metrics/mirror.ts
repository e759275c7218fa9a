/**
 * prom-client metrics that read the hub's own numbers at scrape time. The
 * hub keeps plain counters (cheap on the hot path, shown by /health too);
 * these publish them with Prometheus names and types without a second count.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

type Labels = Record<string, string>;
/** One value, or values by label set. */
export type Reading = number | Array<[labels: Labels, value: number]>;

interface MirrorSpec {
  name: string;
  help: string;
  labelNames?: string[];
  read: () => Reading | Promise<Reading | undefined> | undefined;
}

function entries(reading: Reading | undefined): Array<[Labels, number]> {
  if (reading === undefined) return [];
  return typeof reading === 'number' ? [[{}, reading]] : reading;
}

/** Reads the hub's numbers and puts them in `metric` afresh: series that vanished (a reason no longer counted) go too. */
async function refill(metric: { reset(): void }, spec: MirrorSpec, put: (labels: Labels, value: number) => void): Promise<void> {
  const reading = entries(await spec.read());
  metric.reset();
  for (const [labels, value] of reading) put(labels, value);
}

function base(registry: Registry, spec: MirrorSpec) {
  return { name: spec.name, help: spec.help, labelNames: spec.labelNames ?? [], registers: [registry] };
}

/** A counter whose total the hub already keeps: reset and set to it on every scrape. */
export function mirrorCounter(registry: Registry, spec: MirrorSpec): void {
  const counter: Counter = new Counter({ ...base(registry, spec), collect: () => refill(counter, spec, (l, v) => counter.inc(l, v)) });
}

/** A gauge computed at scrape time. */
export function mirrorGauge(registry: Registry, spec: MirrorSpec): void {
  const gauge: Gauge = new Gauge({ ...base(registry, spec), collect: () => refill(gauge, spec, (l, v) => gauge.set(l, v)) });
}

/** `{code: n}` maps (the hub's counters by reason) as labelled readings. */
export function byLabel(label: string, counts: Partial<Record<string, number>>): Array<[Labels, number]> {
  return Object.entries(counts).map(([k, v]) => [{ [label]: k }, v ?? 0]);
}
