import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");

test("npm run build's darwin-arm64 target yields a Mach-O arm64 executable", () => {
  const r = spawnSync(process.execPath, [join(root, "tools/build.ts"), "--target", "darwin-arm64", "--only", "cleanup"], { encoding: "utf8" });
  expect(r.status).toBe(0);
  const head = readFileSync(join(root, "dist/darwin-arm64/cleanup")).subarray(0, 8);
  expect(head.readUInt32LE(0)).toBe(0xfeedfacf); // MH_MAGIC_64
  expect(head.readUInt32LE(4)).toBe(0x0100000c); // CPU_TYPE_ARM64
}, 120_000);

test("an unknown target or script fails the build with its name", () => {
  const bad = spawnSync(process.execPath, [join(root, "tools/build.ts"), "--target", "windows-x64"], { encoding: "utf8" });
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toContain("unknown target 'windows-x64'");
  const missing = spawnSync(process.execPath, [join(root, "tools/build.ts"), "--only", "nope"], { encoding: "utf8" });
  expect(missing.status).not.toBe(0);
  expect(missing.stderr).toContain("nope");
});
