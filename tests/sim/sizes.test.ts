// `tart list` in the sim walks each VM's disk.img directory for its size while
// the guest adds and removes files there (the runner's .credentials at its end):
// a file gone during the walk must not fail the listing.
import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { allocatedBytes } from "../../sim/tart/sizes.ts";

test("a path removed while the size is taken counts 0; a directory still counts its files", () => {
  const dir = mkdtempSync(join(tmpdir(), "sizes-"));
  expect(allocatedBytes(join(dir, "gone", ".credentials_rsaparams"))).toBe(0);
  mkdirSync(join(dir, "disk.img"));
  writeFileSync(join(dir, "disk.img", "file"), Buffer.alloc(64 * 1024, 1));
  expect(allocatedBytes(dir)).toBeGreaterThanOrEqual(64 * 1024);
});
