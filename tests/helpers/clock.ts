// A clock that moves only when a test says: the slot's code reads time and
// sleeps through a Clock (lib/core/wait.ts), so a wait of minutes runs in a
// few real milliseconds and the same way every time. `advance` moves time by
// an amount; `settle` moves it from timer to timer whenever the program is
// idle, until a promise settles. The program may do real I/O meanwhile
// (files, a local process): settle waits real time for it while no timer is
// due, but a timer that is due fires as soon as the program looks idle, so
// code under it should wait on the clock, not on a process that takes long.
import type { Clock } from "../../lib/core/wait.ts";

interface Timer {
  at: number;
  seq: number;
  fire(): void;
}

/** setImmediate turns with nothing new before the program counts as idle. */
const IDLE_TURNS = 3;

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  /** Pending sleeps, soonest first (equal times in the order they were made). */
  private timers: Timer[] = [];
  /** Counts every sleep made or cut short: a change means the program moved. */
  private changes = 0;
  /** Real work the program declared (hold): time does not move while any is pending. */
  private held = 0;

  constructor(epochMs = Date.parse("2030-01-01T00:00:00Z")) {
    this.t = epochMs;
  }

  now(): number {
    return this.t;
  }

  /** Sleeps registered and not yet fired or aborted. */
  get pending(): number {
    return this.timers.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    this.changes++;
    return new Promise((resolve) => {
      const onAbort = () => {
        const i = this.timers.indexOf(timer);
        if (i >= 0) this.timers.splice(i, 1);
        this.changes++;
        resolve();
      };
      const timer: Timer = {
        at: this.t + (ms > 0 ? ms : 0),
        seq: this.seq++,
        fire: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const at = this.timers.findIndex((o) => o.at > timer.at);
      this.timers.splice(at < 0 ? this.timers.length : at, 0, timer);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /**
   * Declares real work (a model's own I/O or real timer) that time must not
   * move under: `settle` waits for it in real time instead of firing the next
   * timer, which could be a deadline the work would have met.
   */
  hold<T>(work: Promise<T>): Promise<T> {
    this.held++;
    this.changes++;
    return work.finally(() => {
      this.held--;
      this.changes++;
    });
  }

  /** Moves time forward by `ms`, firing each timer due on the way in order and letting the program run after each. */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new Error(`FakeClock.advance: ms must be a number >= 0, got ${ms}`);
    const end = this.t + ms;
    for (;;) {
      await this.idle();
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.fireNext();
    }
    this.t = end;
    await this.idle();
  }

  /**
   * Resolves (or rejects) as `promise` does, moving time to the next timer
   * whenever the program is idle. Fails when that would take time more than
   * `maxMs` past now, or when no timer is pending and nothing settles
   * within `realMs` of real time (the program waits on something else).
   */
  async settle<T>(promise: Promise<T>, o: { maxMs: number; realMs?: number }): Promise<T> {
    const start = this.t;
    const realMs = o.realMs ?? 5_000;
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    promise.then((value) => (outcome = { ok: true, value }), (error: unknown) => (outcome = { ok: false, error }));
    let idleSince = performance.now();
    for (;;) {
      await this.idle();
      if (outcome) {
        if (outcome.ok) return outcome.value;
        throw outcome.error;
      }
      const next = this.timers[0];
      if (!next || this.held > 0) {
        if (performance.now() - idleSince > realMs) {
          throw new Error(`FakeClock.settle: nothing settled within ${realMs} ms of real time and ${this.held > 0 ? `${this.held} held work still runs` : "no sleep is pending"} (virtual time +${this.t - start} ms): the program waits on something the clock does not drive`);
        }
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      if (next.at - start > o.maxMs) {
        throw new Error(`FakeClock.settle: not settled within ${o.maxMs} ms of virtual time (now +${this.t - start} ms; the next of ${this.timers.length} pending sleep(s) ends at +${next.at - start} ms)`);
      }
      this.fireNext();
      idleSince = performance.now();
    }
  }

  private fireNext(): void {
    const next = this.timers.shift()!;
    this.t = Math.max(this.t, next.at);
    this.changes++;
    next.fire();
  }

  /** Returns once the program made no sleep and cut none for IDLE_TURNS event-loop turns (microtasks run before each). */
  private async idle(): Promise<void> {
    let quiet = 0;
    while (quiet < IDLE_TURNS) {
      const before = this.changes;
      await turn();
      quiet = this.changes === before ? quiet + 1 : 0;
    }
  }
}
