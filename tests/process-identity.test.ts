// A process is known by its pid and start time together (lib/vm/tart.ts):
// a live process has a stable start time; an ended one has none; a pid that
// names another process (reused) does not match a start time recorded earlier.
import { expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { isSameProcess, processStartTime } from "../lib/vm/tart.ts";

test("a live process has a start time that stays the same; an ended one has none", async () => {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  const pid = child.pid!;
  const start = processStartTime(pid);
  expect(start).toBeString();
  expect(processStartTime(pid)).toBe(start);
  expect(isSameProcess(pid, start!)).toBe(true);
  const exited = new Promise((r) => child.on("exit", r));
  child.kill("SIGKILL");
  await exited;
  expect(processStartTime(pid)).toBeUndefined();
  expect(isSameProcess(pid, start!)).toBe(false);
});

test("another live process with the pid does not match a start time recorded for an earlier one", () => {
  const own = processStartTime(process.pid)!;
  expect(isSameProcess(process.pid, own)).toBe(true);
  expect(isSameProcess(process.pid, `${own}1`)).toBe(false);
  expect(processStartTime(0)).toBeUndefined();
  expect(processStartTime(-1)).toBeUndefined();
});
