// An error before a cycle can start (bad config, slot busy, state dir
// unusable) has no state to back off with, so under launchd it waits a fixed
// pause before exiting: KeepAlive restarts it at once, and a config mistake
// must not become 60 restarts a minute. Run by hand, it exits at once.
import { systemClock, type Clock } from "./wait.ts";

export const PRE_CYCLE_PAUSE_MS = 10_000;

/** launchd names its jobs in XPC_SERVICE_NAME ("0" outside launchd). */
function underLaunchd(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.XPC_SERVICE_NAME && env.XPC_SERVICE_NAME !== "0");
}

/** Runs `fn`; an error it throws is re-thrown after the pause (on `clock`) when under launchd. */
export async function pacedExit<T>(fn: () => Promise<T>, o: { clock?: Clock; env?: NodeJS.ProcessEnv } = {}): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (underLaunchd(o.env)) await (o.clock ?? systemClock).sleep(PRE_CYCLE_PAUSE_MS);
    throw err;
  }
}
