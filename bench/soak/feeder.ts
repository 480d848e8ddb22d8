// Queues the soak's jobs a few at a time, as a busy org would: it keeps 1 to
// 3 of our jobs queued (drawn per job) until all are queued, so a free slot
// always has work and turnaround is not just time spent in a long queue.
// Each job proves it ran once, on a fresh VM: it appends its number to a host
// file, and fails on a VM a previous job already used.
import type { Rng } from "./prng.ts";
import { PREFIX, type SoakHost } from "./setup.ts";

export interface QueuedJob {
  n: number;
  id: number;
  name: string;
  sleepMs: number;
}

export const jobName = (n: number) => `soak-${n}`;

function script(runsFile: string, n: number, sleepMs: number): string {
  return [
    `echo ${n} >> '${runsFile}'`,
    'test ! -e "$HOME/left-by-previous-job" || { echo "dirty VM"; exit 1; }',
    'touch "$HOME/left-by-previous-job"',
    `sleep ${(sleepMs / 1000).toFixed(2)}`,
    `echo "job ${n} ok"`,
  ].join("; ");
}

export function startFeeder(h: SoakHost, r: Rng, total: number): { queued: QueuedJob[]; allQueued(): boolean; stop(): void } {
  const queued: QueuedJob[] = [];
  let target = r.int(1, 3);
  let busy = false;
  const timer = setInterval(async () => {
    if (busy || queued.length >= total) return;
    busy = true;
    try {
      const waiting = (await h.world.gh.state()).jobs.filter((j) => j.labels.includes(PREFIX) && j.status === "queued").length;
      for (let i = waiting; i < target && queued.length < total; i++) {
        const n = queued.length + 1;
        const sleepMs = r.int(200, 2000);
        const job = await h.world.gh.enqueueJob({ name: jobName(n), labels: [PREFIX], script: script(h.runsFile, n, sleepMs) });
        queued.push({ n, id: job.id, name: job.name, sleepMs });
        target = r.int(1, 3);
      }
    } finally {
      busy = false;
    }
  }, 100);
  return { queued, allQueued: () => queued.length >= total, stop: () => clearInterval(timer) };
}
