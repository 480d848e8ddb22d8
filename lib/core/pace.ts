// An error before a cycle starts has no state to back off with: under launchd it
// pauses before exiting, as KeepAlive restarts at once and a config mistake must
// not become 60 restarts a minute.
import { systemClock, type Clock } from "./wait.ts";

export const PRE_CYCLE_PAUSE_MS = 10_000;

/** launchd names its jobs in XPC_SERVICE_NAME ("0" outside launchd). */
function underLaunchd(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.XPC_SERVICE_NAME && env.XPC_SERVICE_NAME !== "0");
}

/** Runs `fn`; what it throws is re-thrown, after the pause under launchd. A stop (`signal`: a bootout) ends the pause. */
export async function pacedExit<T>(fn: () => Promise<T>, o: { clock?: Clock; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (underLaunchd(o.env)) await (o.clock ?? systemClock).sleep(PRE_CYCLE_PAUSE_MS, o.signal);
    throw err;
  }
}
