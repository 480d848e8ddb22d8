// Keeps the state-derived metrics in step with every write of the state file.
import type { SlotMetrics } from "../host/metrics/index.ts";
import type { SlotState, SlotStore } from "./state.ts";

export function mirrorStateToMetrics(store: SlotStore, metrics: SlotMetrics): void {
  const mirror = (s: Readonly<SlotState>, prev?: Readonly<SlotState>) => {
    if (s.ghosts.length !== prev?.ghosts.length) metrics.ghosts(s.ghosts.length);
    if (s.failures !== prev?.failures || s.backoff_until !== prev?.backoff_until) {
      metrics.backoff(s.backoff_until ? new Date(s.backoff_until) : undefined, s.failures);
    }
    if (s.phase !== prev?.phase) metrics.phase(s.phase);
    if (s.host_degraded_at !== prev?.host_degraded_at || !prev) metrics.hostDegraded(s.host_degraded_at !== undefined);
  };
  mirror(store.current);
  store.onChange = mirror;
}
