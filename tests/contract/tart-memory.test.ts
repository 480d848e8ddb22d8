// The tart contract (tart-contract.ts) held by MemoryTart, on a clock that
// jumps to its next timer whenever nothing else is left to run: the suite's
// seconds of tart time pass in milliseconds.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Clock } from "../../lib/core/wait.ts";
import { defaultGuest, MemoryTart, type GuestModel } from "../../sim/tart/memory.ts";
import { CONTRACT_SETTINGS, tartContract } from "./tart-contract.ts";

/** A clock that stands still while anything else can run, then jumps to its earliest timer. */
class JumpingClock implements Clock {
  private t = Date.now();
  private readonly timers = new Set<{ at: number; fire: () => void }>();
  private jumping = false;

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = {
        at: this.t + Math.max(0, ms),
        fire: () => {
          this.timers.delete(timer);
          signal?.removeEventListener("abort", timer.fire);
          resolve();
        },
      };
      signal?.addEventListener("abort", timer.fire, { once: true });
      this.timers.add(timer);
      void this.jump();
    });
  }

  private async jump(): Promise<void> {
    if (this.jumping) return;
    this.jumping = true;
    // Everything not waiting on this clock runs first (promise chains, stream events).
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    this.jumping = false;
    if (this.timers.size === 0) return;
    this.t = Math.max(this.t, Math.min(...[...this.timers].map((x) => x.at)));
    for (const timer of [...this.timers]) if (timer.at <= this.t) timer.fire();
    if (this.timers.size > 0) void this.jump();
  }
}

/** The contract's guests: `cat` answers its stdin, `sleep N` lasts N s or until its VM stops. */
function contractGuest(clock: Clock): GuestModel {
  return async (command, stdin, io) => {
    if (command === "cat") {
      io.stdout(stdin);
      return 0;
    }
    const sleep = /^sleep (\d+)$/.exec(command);
    if (sleep) {
      await clock.sleep(Number(sleep[1]) * 1000, io.signal);
      return 0;
    }
    return await defaultGuest(command, stdin, io);
  };
}

tartContract("memory tart", async () => {
  const clock = new JumpingClock();
  const tart = new MemoryTart({ clock, guest: contractGuest(clock), settings: CONTRACT_SETTINGS });
  const imageRef = "registry.test:5000/macos-runner:sonoma";
  tart.publish(imageRef);
  const dir = mkdtempSync(join(tmpdir(), "memory-tart-logs-"));
  return {
    tart,
    imageRef,
    dir,
    now: () => clock.now(),
    wait: (ms) => clock.sleep(ms),
    configure: (patch) => tart.configure(patch),
    placesFreed: (releaseMs) => clock.sleep(releaseMs),
    stop: async () => {
      tart.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
