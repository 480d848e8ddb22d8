// Waiting with a deadline: the one poll loop every wait on a VM, a guest or
// a lease goes through. Sleeps are zx's; an abort ends the wait at once.
// Time comes from a Clock: the system's on a host; tests of the cycle inject
// one that moves only when they say (tests/helpers/clock.ts).
import { sleep as zxSleep } from "zx";

/** What a wait reads the time from and sleeps on. */
export interface Clock {
  /** Epoch ms. */
  now(): number;
  /** Resolves after `ms`, or at once when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** zx's sleep, ended early (resolving) when `signal` aborts. */
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

/** The host's clock. */
export const systemClock: Clock = { now: () => Date.now(), sleep };

export interface PollOptions {
  /** Epoch ms after which the poll gives up (resolves undefined). */
  deadline: number;
  everyMs: number;
  signal?: AbortSignal;
  clock?: Clock;
}

/** Calls `probe` until it returns a value, the deadline passes or the signal aborts (undefined then). */
export async function poll<T>(probe: () => T | undefined | Promise<T | undefined>, o: PollOptions): Promise<T | undefined> {
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    const clock = o.clock ?? systemClock;
    if (o.signal?.aborted || clock.now() + o.everyMs > o.deadline) return undefined;
    await clock.sleep(o.everyMs, o.signal);
  }
}

/**
 * Calls `fn` once `ms` have passed on `clock`, unless the returned cancel
 * is called first: a timer that reads the clock it is given.
 */
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
