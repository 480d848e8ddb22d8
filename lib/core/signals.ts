// The first SIGTERM (launchd's bootout), SIGINT or SIGHUP asks for a drain; a
// second asks for now (the job is cut short). `now` implies `drain`.
import type { Logger } from "./log.ts";

export interface Stop {
  drain: AbortSignal;
  now: AbortSignal;
}

export function stopController(): Stop & { request(): "drain" | "now" } {
  const drain = new AbortController();
  const now = new AbortController();
  return {
    drain: drain.signal,
    now: now.signal,
    request() {
      if (!drain.signal.aborted) {
        drain.abort();
        return "drain";
      }
      now.abort();
      return "now";
    },
  };
}

export function stopOnSignals(log: Logger): Stop {
  const stop = stopController();
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    process.on(sig, () => {
      const how = stop.request();
      log.warn("signal", how === "drain" ? `${sig}: finishing the current job (if any), then cleaning up` : `${sig} again: cutting the job short`, { signal: sig });
    });
  }
  return stop;
}

export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
