import { afterEach, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backoffMs } from "../lib/slot/loop.ts";
import { lockSlot, SlotBusyError } from "../lib/slot/lock.ts";
import { parseSlotState, SlotStore } from "../lib/slot/state.ts";
import { systemClock } from "../lib/core/wait.ts";
import { FakeClock } from "./helpers/clock.ts";

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "slot-test-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) {
    chmodSync(d, 0o700);
    rmSync(d, { recursive: true, force: true });
  }
});

/** A real process holding slot 1's lock, as a second launchd start would see it. */
async function holder(dir: string) {
  const src = `const { lockSlot } = await import(${JSON.stringify(join(import.meta.dir, "../lib/slot/lock.ts"))}); lockSlot(${JSON.stringify(dir)}, 1); console.log("held"); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["-e", src], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve) => child.stdout!.once("data", () => resolve()));
  return child;
}

describe("slot lock (flock)", () => {
  test("a second holder is refused while the first lives; the kernel frees it when the holder is killed", async () => {
    const dir = tmp();
    const h = await holder(dir);
    try {
      expect(() => lockSlot(dir, 1)).toThrow(SlotBusyError);
      expect(() => lockSlot(dir, 1)).toThrow(new RegExp(`slot 1 is in use by another process \\(pid ${h.pid}\\)`));
      lockSlot(dir, 2).release(); // another slot is independent
    } finally {
      h.kill("SIGKILL");
      await new Promise((r) => h.once("exit", r));
    }
    const lock = lockSlot(dir, 1);
    expect(readFileSync(join(dir, "slot-1.lock"), "utf8").trim()).toBe(String(process.pid));
    lock.release();
  });

  test("a lock file naming a live unrelated pid (reused after a crash) does not block the slot", () => {
    const dir = tmp();
    writeFileSync(join(dir, "slot-1.lock"), `${process.ppid}\n`);
    lockSlot(dir, 1).release();
  });

  test("racing takers: never two holders", async () => {
    const dir = tmp();
    // Each taker tries once, records that it tried, and a winner holds until all four have tried.
    const src = (round: number, i: number) => `const { lockSlot } = await import(${JSON.stringify(join(import.meta.dir, "../lib/slot/lock.ts"))});
      const { existsSync, writeFileSync } = await import("node:fs");
      const tried = (k) => ${JSON.stringify(dir)} + "/tried-${round}-" + k;
      let lock; try { lock = lockSlot(${JSON.stringify(dir)}, 1); } catch {}
      writeFileSync(tried(${i}), "");
      console.log(lock ? "got" : "busy");
      if (lock) { while (![0, 1, 2, 3].every((k) => existsSync(tried(k)))) await Bun.sleep(10); lock.release(); }`;
    for (let round = 0; round < 5; round++) {
      const outs = await Promise.all([0, 1, 2, 3].map((i) => new Promise<string>((resolve) => {
        const c = spawn(process.execPath, ["-e", src(round, i)], { stdio: ["ignore", "pipe", "inherit"] });
        let out = "";
        c.stdout!.on("data", (d) => (out += d));
        c.on("exit", () => resolve(out.trim()));
      })));
      expect(outs.filter((o) => o === "got").length).toBe(1);
    }
  });
});

describe("state file", () => {
  test("writes atomically, 0600, merging patches and dropping undefined keys; a new phase restarts phase_since; times are the slot's clock's", async () => {
    const dir = tmp();
    const clock = new FakeClock(Date.parse("2030-01-01T00:00:00Z"));
    const store = new SlotStore(dir, 1, clock);
    expect(store.existed).toBe(false);
    store.write({ phase: "clone", vm: "p-h-1-abcdef", runner_name: "p-h-1-abcdef" });
    await clock.advance(5_000);
    store.write({ runner_id: 42 });
    expect(store.current.phase_since).toBe("2030-01-01T00:00:00.000Z");
    expect(store.current.updated_at).toBe("2030-01-01T00:00:05.000Z");
    const onDisk = JSON.parse(readFileSync(join(dir, "slot-1.json"), "utf8"));
    expect(onDisk).toMatchObject({ version: 1, slot: 1, phase: "clone", vm: "p-h-1-abcdef", runner_id: 42, failures: 0, ghosts: [], dispose: [] });
    expect(statSync(join(dir, "slot-1.json")).mode & 0o777).toBe(0o600);
    store.write({ phase: "done", vm: undefined, runner_id: undefined });
    const again = new SlotStore(dir, 1, systemClock);
    expect(again.existed).toBe(true);
    expect(again.current.phase).toBe("done");
    expect(again.current.vm).toBeUndefined();
    expect(readdirSync(dir)).toEqual(["slot-1.json"]);
  });

  test("garbage, empty, non-object and wrongly typed files are reported and replaced by defaults, never a crash", () => {
    expect(parseSlotState("{half", 1, Date.now()).problems[0]).toMatch(/not JSON/);
    expect(parseSlotState("[1,2]", 1, Date.now()).problems).toEqual(["the file does not hold a JSON object"]);
    const typed = parseSlotState(JSON.stringify({ phase: "flying", failures: "3", vm: "x-h-1-abcdef", ghosts: [{ id: "no" }] }), 1, Date.now());
    expect(typed.state.phase).toBe("idle");
    expect(typed.state.failures).toBe(0);
    expect(typed.state.ghosts).toEqual([]);
    expect(typed.state.vm).toBe("x-h-1-abcdef");
    expect(typed.problems.map((p) => p.split(":")[0])).toEqual(["phase", "ghosts", "failures"]);
    const missing = parseSlotState(JSON.stringify({ phase: "run" }), 2, Date.now());
    expect(missing.problems).toEqual([]);
    expect(missing.state.failures).toBe(0);
    const dir = tmp();
    writeFileSync(join(dir, "slot-1.json"), "");
    expect(new SlotStore(dir, 1, systemClock).problems).toEqual(["the file is empty"]);
  });

  test("an upgraded host's state with the start path's old name (pre-cloned) reads as next-vm, with no problem; an unknown path is one", () => {
    const old = parseSlotState(JSON.stringify({ phase: "run", path: "pre-cloned" }), 1, Date.now());
    expect([old.state.path, old.problems]).toEqual(["next-vm", []]);
    expect(parseSlotState(JSON.stringify({ phase: "run", path: "warm" }), 1, Date.now()).problems.map((p) => p.split(":")[0])).toEqual(["path"]);
  });

  test("a write that cannot land keeps the state in memory, says so, and leaves no temp file", () => {
    const dir = tmp();
    const store = new SlotStore(dir, 1, systemClock);
    store.write({ phase: "run", vm: "p-h-1-abcdef" });
    chmodSync(dir, 0o500);
    if (process.getuid?.() === 0) return; // root writes through modes; the ENOSPC path is covered end to end
    expect(store.write({ phase: "job" })).toBe(false);
    expect(store.persisted).toBe(false);
    expect(store.current.phase).toBe("job");
    expect(readdirSync(dir)).toEqual(["slot-1.json"]);
  });

  test("stray temp files of a killed writer are removed", () => {
    const dir = tmp();
    writeFileSync(join(dir, "slot-1.json.123.tmp"), "x");
    writeFileSync(join(dir, "slot-2.json.123.tmp"), "x");
    expect(new SlotStore(dir, 1, systemClock).removeStrayTempFiles()).toBe(1);
    expect(readdirSync(dir)).toEqual(["slot-2.json.123.tmp"]);
  });
});

test("backoff doubles per failure and is capped", () => {
  expect([0, 1, 2, 3, 4, 10, 1000].map((f) => backoffMs(f, 1000, 5000))).toEqual([0, 1000, 2000, 4000, 5000, 5000, 5000]);
});
