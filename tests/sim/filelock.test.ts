// The sim's lock file for tart's short critical sections: a holder killed
// before it wrote its pid must not block every later tart call (tart's own
// locks are flock(2), which die with their holder), nor one frozen with its
// powered-off guest.
import { expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdtempSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withFileLock } from "../../sim/tart/filelock.ts";

const lockFile = () => join(mkdtempSync(join(tmpdir(), "filelock-")), ".sim-lock");

test("a lock file left without a pid by a killed holder is taken over", () => {
  const path = lockFile();
  writeFileSync(path, "");
  const past = new Date(Date.now() - 5_000);
  utimesSync(path, past, past);
  expect(withFileLock(path, () => "ran", 3_000)).toBe("ran");
});

test("a lock file naming a dead pid is taken over; one naming a live pid is waited for, then refused naming it", () => {
  const dead = lockFile();
  writeFileSync(dead, "2147483646");
  expect(withFileLock(dead, () => "ran", 3_000)).toBe("ran");
  const held = lockFile();
  writeFileSync(held, String(process.pid));
  expect(() => withFileLock(held, () => "ran", 200)).toThrow(`held by pid ${process.pid}`);
});

test("a lock file naming a frozen (SIGSTOPped) process is taken over: a guest powered off mid-section holds nothing on the host", () => {
  const frozen = spawn("sleep", ["30"], { stdio: "ignore" });
  try {
    process.kill(frozen.pid!, "SIGSTOP");
    const path = lockFile();
    writeFileSync(path, String(frozen.pid));
    expect(withFileLock(path, () => "ran", 3_000)).toBe("ran");
  } finally {
    frozen.kill("SIGKILL");
  }
});
