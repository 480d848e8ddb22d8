// Waiting with a deadline on a Clock (tests of the cycle inject one that moves
// only when they say); an abort ends a wait at once.
import { sleep as zxSleep } from "zx";

export interface Clock {
  /** Epoch ms. */
  now(): number;
  /** Resolves at once when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return zxSleep(ms);
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

export const systemClock: Clock = { now: () => Date.now(), sleep };

/** Undefined when the deadline (epoch ms) passes or the signal aborts first. */
export async function poll<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  o: { deadline: number; everyMs: number; signal?: AbortSignal; clock?: Clock },
): Promise<T | undefined> {
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    const clock = o.clock ?? systemClock;
    if (o.signal?.aborted || clock.now() + o.everyMs > o.deadline) return undefined;
    await clock.sleep(o.everyMs, o.signal);
  }
}

/** Calls `fn` after `ms` on `clock` unless the returned cancel is called first. */
export function after(clock: Clock, ms: number, fn: () => void): () => void {
  const cancel = new AbortController();
  void clock.sleep(ms, cancel.signal).then(() => {
    if (!cancel.signal.aborted) fn();
  });
  return () => cancel.abort();
}

/** A sleep that something else can cut short: a file watcher, a probe that succeeded. */
export class Waker {
  private wakeUp: (() => void) | undefined;
  private pending = false;

  constructor(private readonly clock: Clock) {}

  /** Ends the current sleep, or the next one at once. */
  wake(): void {
    if (this.wakeUp) this.wakeUp();
    else this.pending = true;
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.pending || signal?.aborted) {
      this.pending = false;
      return;
    }
    const cut = new AbortController();
    const end = () => cut.abort();
    this.wakeUp = end;
    signal?.addEventListener("abort", end, { once: true });
    try {
      await this.clock.sleep(ms, cut.signal);
    } finally {
      if (this.wakeUp === end) this.wakeUp = undefined;
      signal?.removeEventListener("abort", end);
    }
  }
}
