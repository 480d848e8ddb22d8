// How long a slot waits after `failures` failed cycles in a row: doubling
// from the initial delay, capped, so an outage never becomes a restart storm.
export function backoffMs(failures: number, initialMs: number, maxMs: number): number {
  if (failures <= 0) return 0;
  return Math.min(maxMs, initialMs * 2 ** Math.min(failures - 1, 30));
}
