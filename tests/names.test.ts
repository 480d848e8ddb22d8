import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { currentHostId, hostId, isSlotsOwn, machineId, MAX_NAME, newName, parseIoregUuid, shortMachineId, slotNames, slotPrefix } from "../lib/config/names.ts";

test("names are <prefix>-<host>-<slot>-<random>, unique, and fit GitHub's 64", () => {
  const a = newName("acme-mac", 1, "mini-07");
  expect(a).toMatch(/^acme-mac-mini-07-1-[0-9a-f]{6}$/);
  expect(newName("acme-mac", 1, "mini-07")).not.toBe(a);
  const long = newName("p".repeat(32), 2, "h".repeat(80));
  expect(long.length).toBeLessThanOrEqual(MAX_NAME);
  expect(isSlotsOwn(long, "p".repeat(32), 2, "h".repeat(80))).toBe(true);
});

test("a slot owns only names with its own prefix, host and slot", () => {
  const mine = newName("acme", 1, "mini");
  expect(isSlotsOwn(mine, "acme", 1, "mini")).toBe(true);
  expect(isSlotsOwn(mine, "acme", 2, "mini")).toBe(false);
  expect(isSlotsOwn(mine, "acme", 1, "other")).toBe(false);
  expect(isSlotsOwn(mine, "acm", 1, "mini")).toBe(false);
  expect(isSlotsOwn(`${slotPrefix("acme", 1, "mini")}golden`, "acme", 1, "mini")).toBe(false);
  expect(isSlotsOwn(`${mine}0`, "acme", 1, "mini")).toBe(false);
  expect(isSlotsOwn("someone-elses-runner", "acme", 1, "mini")).toBe(false);
});

test("a slot's golden VM is named by the image, owned as a golden only, never as a job VM", () => {
  const names = slotNames("acme", 1, "mini");
  const digest = "0123456789abcdef".repeat(4);
  const golden = names.golden(digest);
  expect(golden).toBe("acme-mini-1-golden-0123456789ab");
  expect(names.ownsGolden(golden)).toBe(true);
  // Sweeps, recovery and cleanup go by owns(): they never take a golden.
  expect(names.owns(golden)).toBe(false);
  expect(names.ownsGolden(names.next())).toBe(false);
  expect(slotNames("acme", 2, "mini").ownsGolden(golden)).toBe(false);
  expect(names.ownsGolden(`${golden}0`)).toBe(false);
});

describe("the host id", () => {
  const dir = mkdtempSync(join(tmpdir(), "host-id-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const stateDir = () => join(dir, `state-${++n}`);
  const IOREG_OUTPUT = [
    '+-o Mac14,3  <class IOPlatformExpertDevice, id 0x100000202, registered, matched, active, busy 0 (162 ms), retain 29>',
    "    {",
    '      "IOPlatformSerialNumber" = "C02XXXXXXXXX"',
    '      "IOPlatformUUID" = "4A5B6C7D-1234-5678-9ABC-DEF012345678"',
    '      "model" = <"Mac14,3">',
    "    }",
  ].join("\n");
  /** A stand-in for /usr/sbin/ioreg (the process boundary): prints what a Mac's prints. */
  function fakeIoreg(output: string, code = 0): string {
    const path = join(dir, `ioreg-${++n}`);
    writeFileSync(path, `#!/bin/sh\ncat <<'OUT'\n${output}\nOUT\nexit ${code}\n`, { mode: 0o755 });
    return path;
  }

  test("on a Mac: the first 8 hex digits of the hardware UUID (ioreg IOPlatformUUID), pinned in state_dir on the first start", () => {
    expect(parseIoregUuid(IOREG_OUTPUT)).toBe("4A5B6C7D-1234-5678-9ABC-DEF012345678");
    const state = stateDir();
    const pinned: string[] = [];
    const source = { platform: "darwin" as const, ioregPath: fakeIoreg(IOREG_OUTPUT) };
    expect(hostId(undefined, state, (id, from) => pinned.push(`${id} ${from}`), source)).toBe("4a5b6c7d");
    expect(pinned).toEqual(["4a5b6c7d the hardware UUID (ioreg IOPlatformUUID)"]);
    expect(readFileSync(join(state, "host-id"), "utf8")).toBe("4a5b6c7d\n");
    // Names with it are valid runner names.
    expect(newName("acme-mac", 1, "4a5b6c7d")).toMatch(/^acme-mac-4a5b6c7d-1-[0-9a-f]{6}$/);
  });

  test("elsewhere (the simulated hosts): the machine id file", () => {
    const file = join(dir, "machine-id");
    writeFileSync(file, "3D1219C7c4c5404aaa1f6d2a48adfda4\n");
    expect(machineId({ platform: "linux", machineIdFiles: [join(dir, "missing"), file] })).toEqual({ id: "3d1219c7", from: file });
    expect(hostId(undefined, stateDir(), undefined, { platform: "linux", machineIdFiles: [file] })).toBe("3d1219c7");
  });

  test("never the hostname: no machine id to read (ioreg fails, an all-zero id) gives a random id, pinned", () => {
    const state = stateDir();
    const failing = { platform: "darwin" as const, ioregPath: fakeIoreg("", 1) };
    const id = hostId(undefined, state, undefined, failing);
    expect(id).toMatch(/^[0-9a-f]{8}$/);
    expect(id).not.toBe(hostname().split(".")[0]!.toLowerCase());
    expect(hostId(undefined, state, undefined, failing)).toBe(id);
    expect(shortMachineId("00000000-0000-0000-0000-000000000000")).toBeUndefined();
    expect(machineId({ platform: "darwin", ioregPath: fakeIoreg('"IOPlatformUUID" = "not-a-uuid"') })).toBeUndefined();
  });

  test("an id pinned by an earlier release (from the hostname) keeps working; host.id wins over both", () => {
    const state = stateDir();
    mkdirSync(state, { recursive: true });
    writeFileSync(join(state, "host-id"), "admins-mac-mini\n");
    const source = { platform: "darwin" as const, ioregPath: fakeIoreg(IOREG_OUTPUT) };
    expect(hostId(undefined, state, () => expect.unreachable(), source)).toBe("admins-mac-mini");
    expect(currentHostId(undefined, state, source)).toBe("admins-mac-mini");
    expect(hostId("mini-02", state, undefined, source)).toBe("mini-02");
    expect(currentHostId(undefined, stateDir(), source)).toBe("4a5b6c7d");
  });
});
