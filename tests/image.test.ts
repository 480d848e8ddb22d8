// What a slot clones (lib/image/pin.ts) given image.ref and image.lock, the lock
// file itself, the prune rule's "in use" reading of slot state files, and the
// disk floor. Real files in a temp state dir; a logger writing to a buffer.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { Config } from "../lib/config/index.ts";
import { DISK_MARGIN_GB, GB, requiredFreeBytes } from "../lib/core/disk.ts";
import { StateIoError } from "../lib/core/errors.ts";
import { imageLockPath, imageToClone, readImageLock, writeImageLock } from "../lib/image/pin.ts";
import { digestsInUse } from "../lib/image/pull.ts";
import { createLogger } from "../lib/core/log.ts";
import { parseImageRef } from "../lib/image/oci-ref.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const REF = "registry.example.com:5000/ci/macos-runner:sequoia";

function setup(ref = REF) {
  const stateDir = mkdtempSync(join(tmpdir(), "image-test-"));
  dirs.push(stateDir);
  const out = new PassThrough();
  let logged = "";
  out.on("data", (d) => (logged += d));
  const log = createLogger({ stream: out, format: "json" });
  const config = { image: { ref }, host: { stateDir } } as unknown as Config;
  return { stateDir, config, log, logged: () => logged };
}

describe("imageToClone", () => {
  test("no pin yet: the tag, unpinned", () => {
    const s = setup();
    expect(imageToClone(s.config, s.log)).toEqual({ ref: REF, pinned: false });
  });

  test("a pin for this ref: the repository at the pinned digest", () => {
    const s = setup();
    writeImageLock(s.stateDir, { ref: REF, digest: D1, pinned_at: "2026-01-01T00:00:00Z" });
    expect(imageToClone(s.config, s.log)).toEqual({ ref: `registry.example.com:5000/ci/macos-runner@${D1}`, digest: D1, pinned: true });
  });

  test("a pin for another image.ref is not used (the operator changed the tag); says so", () => {
    const s = setup();
    writeImageLock(s.stateDir, { ref: "registry.example.com:5000/ci/macos-runner:sonoma", digest: D1, pinned_at: "2026-01-01T00:00:00Z" });
    expect(imageToClone(s.config, s.log)).toEqual({ ref: REF, pinned: false });
    expect(s.logged()).toContain('"event":"image.lock-stale"');
  });

  test("a damaged lock never fails the slot: the tag, with a warning", () => {
    const s = setup();
    writeFileSync(imageLockPath(s.stateDir), "{not json");
    expect(imageToClone(s.config, s.log)).toEqual({ ref: REF, pinned: false });
    expect(s.logged()).toContain('"event":"image.lock-unreadable"');
    expect(() => readImageLock(s.stateDir)).toThrow(StateIoError);
  });

  test("a local VM name, or a ref that is a digest already: used as it is", () => {
    const local = setup("macos-runner-sequoia");
    writeImageLock(local.stateDir, { ref: REF, digest: D1, pinned_at: "x" });
    expect(imageToClone(local.config, local.log)).toEqual({ ref: "macos-runner-sequoia", pinned: false });
    const byDigest = setup(`registry.example.com/macos-runner@${D2}`);
    expect(imageToClone(byDigest.config, byDigest.log)).toEqual({ ref: `registry.example.com/macos-runner@${D2}`, digest: D2, pinned: true });
  });
});

describe("image references", () => {
  test("host:port, nested namespace, tag or digest, default latest; no slash is local", () => {
    expect(parseImageRef(REF)).toEqual({ host: "registry.example.com:5000", namespace: "ci/macos-runner", reference: "sequoia" });
    expect(parseImageRef("ghcr.io/cirruslabs/macos-sequoia-base")?.reference).toBe("latest");
    expect(parseImageRef(`r.example.com/x@${D1}`)?.reference).toBe(D1);
    expect(parseImageRef("macos-runner-sequoia")).toBeUndefined();
    expect(parseImageRef("r.example.com/UPPER:tag")).toBeUndefined();
  });
});

describe("digests in use (the prune rule)", () => {
  test("a slot's image counts while its state names a VM; a finished slot's does not", () => {
    const s = setup();
    writeFileSync(join(s.stateDir, "slot-1.json"), JSON.stringify({ slot: 1, phase: "run", vm: "vm-1", image: D1 }));
    writeFileSync(join(s.stateDir, "slot-2.json"), JSON.stringify({ slot: 2, phase: "done", image: D2 }));
    writeFileSync(join(s.stateDir, "slot-3.json.123.tmp"), "{");
    expect(Object.fromEntries(digestsInUse(s.stateDir))).toEqual({ [D1]: [1] });
    expect(digestsInUse(join(s.stateDir, "missing")).size).toBe(0);
  });
});

describe("the disk floor", () => {
  test("image.min_free_gb wins; else the image's disk size + 20 GB; else 50 GB + 20 GB", () => {
    expect(requiredFreeBytes(80, 50 * GB)).toBe(80 * GB);
    expect(requiredFreeBytes(undefined, 42 * GB)).toBe((42 + DISK_MARGIN_GB) * GB);
    expect(requiredFreeBytes(undefined, undefined)).toBe(70 * GB);
  });
});
