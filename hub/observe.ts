/**
 * Events the hub only reports (nobody can veto them), for the metrics
 * exporter and the dashboard's live series. Kept apart from the counters:
 * a histogram needs each observation, not a running total.
 */
import type { WpkState } from './wpk/types.js';

type Listener<A extends unknown[]> = (...args: A) => void;

/** A list of listeners for one kind of event; `add` returns the function that removes it. */
export class Signal<A extends unknown[]> {
  readonly #listeners = new Set<Listener<A>>();

  add(listener: Listener<A>): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(...args: A): void {
    for (const l of this.#listeners) l(...args);
  }
}

export class HubObservers {
  /** A node's first answer to a trigger (accepted, running, rejected...): ms since the trigger was published. */
  readonly dispatchAnswered = new Signal<[latencyMs: number]>();
  /** A trigger went out (a mode-all trigger naming many nodes counts once). */
  readonly triggered = new Signal<[]>();
  /** A WPK ended: its final state and ms since it was created. */
  readonly wpkFinished = new Signal<[state: WpkState, durationMs: number]>();
  /** A node's record changed durably (registration, status, presence, removal); liveness alone is not reported. */
  readonly nodeChanged = new Signal<[nodeId: string]>();
  /** The registry reached disk: how long the write took. */
  readonly registryFlushed = new Signal<[durationMs: number]>();
}
