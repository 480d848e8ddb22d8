import { afterEach, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backoffMs, SlotBusyError, SlotLock, SlotStore } from "../lib/slot.ts";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "slot-test-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe("SlotLock", () => {
  test("a second holder of the same slot is refused while the first lives", async () => {
    const dir = tmp();
    // The first holder is another real process, as a second launchd start would see it.
    const holder = spawn(process.execPath, ["-e", `const { SlotLock } = await import(${JSON.stringify(join(import.meta.dir, "../lib/slot.ts"))}); SlotLock.acquire(${JSON.stringify(dir)}, 1); console.log("held"); setInterval(() => {}, 1000);`], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve()));
    try {
      expect(() => SlotLock.acquire(dir, 1)).toThrow(SlotBusyError);
      expect(() => SlotLock.acquire(dir, 1)).toThrow(new RegExp(`slot 1 is already served by another loop \\(pid ${holder.pid}`));
      // Another slot is independent.
      SlotLock.acquire(dir, 2).release();
    } finally {
      holder.kill("SIGKILL");
      await new Promise((r) => holder.once("exit", r));
    }
    // The holder died without releasing: the lock is stale and taken over.
    const lock = SlotLock.acquire(dir, 1);
    expect(JSON.parse(readFileSync(join(dir, "slot-1.lock"), "utf8")).pid).toBe(process.pid);
    lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a lock from before a reboot is stale even if its pid is alive now", () => {
    const dir = tmp();
    writeFileSync(join(dir, "slot-1.lock"), JSON.stringify({ pid: process.pid, booted_at: 1 }));
    const lock = SlotLock.acquire(dir, 1);
    lock.release();
  });

  test("an unreadable lock file is treated as stale", () => {
    const dir = tmp();
    writeFileSync(join(dir, "slot-2.lock"), "garbage");
    SlotLock.acquire(dir, 2).release();
    expect(existsSync(join(dir, "slot-2.lock"))).toBe(false);
  });
});

describe("SlotStore", () => {
  test("writes atomically, 0600, merging patches and dropping undefined keys", () => {
    const dir = tmp();
    const store = new SlotStore(dir, 1);
    store.write({ phase: "clone", vm: "p-h-1-abcdef", runner_name: "p-h-1-abcdef" });
    store.write({ runner_id: 42 });
    const onDisk = JSON.parse(readFileSync(join(dir, "slot-1.json"), "utf8"));
    expect(onDisk).toMatchObject({ slot: 1, phase: "clone", vm: "p-h-1-abcdef", runner_id: 42, failures: 0 });
    expect(statSync(join(dir, "slot-1.json")).mode & 0o777).toBe(0o600);
    store.write({ phase: "done", vm: undefined, runner_id: undefined });
    const again = new SlotStore(dir, 1).current;
    expect(again.phase).toBe("done");
    expect("vm" in again).toBe(false);
    expect("runner_id" in again).toBe(false);
    expect(readdirSync(dir)).toEqual(["slot-1.json"]);
  });

  test("a corrupt state file reads as no state rather than crashing the slot", () => {
    const dir = tmp();
    writeFileSync(join(dir, "slot-1.json"), "{half");
    expect(new SlotStore(dir, 1).current.phase).toBe("done");
  });
});

test("backoff doubles per failure and is capped", () => {
  expect([0, 1, 2, 3, 4, 10].map((f) => backoffMs(f, 1000, 5000))).toEqual([0, 1000, 2000, 4000, 5000, 5000]);
});

