// The tart contract (tart-contract.ts) held by MemoryTart on a FakeClock:
// every wait is settled in virtual time, so the suite's seconds of tart time
// pass in milliseconds, as they do for in-process tests of the cycle.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Clock } from "../../lib/core/wait.ts";
import { defaultGuest, MemoryTart, type GuestModel } from "../../sim/tart/memory.ts";
import { FakeClock } from "../helpers/clock.ts";
import { CONTRACT_SETTINGS, tartContract } from "./tart-contract.ts";

/** The longest any one awaited step of the contract may take in virtual time. */
const STEP_MAX_MS = 120_000;

/** The contract's guests: `cat` answers its stdin, `[echo WORD && ]sleep N` lasts N s or until its VM stops. */
function contractGuest(clock: Clock): GuestModel {
  return async (command, stdin, io) => {
    if (command === "cat") {
      io.stdout(stdin);
      return 0;
    }
    const sleep = /^(?:echo (\w+) && )?sleep (\d+)$/.exec(command);
    if (sleep) {
      if (sleep[1]) io.stdout(`${sleep[1]}\n`);
      await clock.sleep(Number(sleep[2]) * 1000, io.signal);
      return 0;
    }
    return await defaultGuest(command, stdin, io);
  };
}

tartContract("memory tart", async () => {
  const clock = new FakeClock(Date.now());
  const tart = new MemoryTart({ clock, guest: contractGuest(clock), settings: CONTRACT_SETTINGS });
  const imageRef = "registry.test:5000/macos-runner:sonoma";
  tart.publish(imageRef);
  const dir = mkdtempSync(join(tmpdir(), "memory-tart-logs-"));
  return {
    tart,
    imageRef,
    dir,
    now: () => clock.now(),
    sleep: (ms) => clock.sleep(ms),
    settle: (p) => clock.settle(p, { maxMs: STEP_MAX_MS }),
    configure: (patch) => tart.configure(patch),
    placesFreed: (releaseMs) => clock.sleep(releaseMs),
    stop: async () => {
      tart.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
