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

/** A counter whose total the hub already keeps: reset and set to it on every scrape. */
export function mirrorCounter(registry: Registry, spec: MirrorSpec): void {
  new Counter({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames ?? [],
    registers: [registry],
    async collect() {
      const reading = entries(await spec.read());
      this.reset();
      for (const [labels, value] of reading) this.inc(labels, value);
    },
  });
}

/** A gauge computed at scrape time. */
export function mirrorGauge(registry: Registry, spec: MirrorSpec): void {
  new Gauge({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labelNames ?? [],
    registers: [registry],
    async collect() {
      const reading = entries(await spec.read());
      this.reset();
      for (const [labels, value] of reading) this.set(labels, value);
    },
  });
}

/** `{code: n}` maps (the hub's counters by reason) as labelled readings. */
export function byLabel(label: string, counts: Partial<Record<string, number>>): Array<[Labels, number]> {
  return Object.entries(counts).map(([k, v]) => [{ [label]: k }, v ?? 0]);
}
