import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { leaseFor, leaseWatcher } from "../lib/vm/leases.ts";
import { resolveLease } from "../sim/tart/dhcpd-leases.ts";
import { systemClock } from "../lib/core/wait.ts";
import { FakeClock } from "./helpers/clock.ts";

const dir = mkdtempSync(join(tmpdir(), "leases-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const block = (ip: string, mac: string, expiresS: number) =>
  `{\n\tname=admins-Virtual-Machine\n\tip_address=${ip}\n\thw_address=1,${mac}\n\tidentifier=1,${mac}\n\tlease=0x${expiresS.toString(16)}\n}\n`;
/** Replaced as bootpd does: a new file renamed over the old one. */
function writeLeases(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

test("leaseFor: bootpd's short MAC form, unexpired leases only", () => {
  const path = join(dir, "one");
  const later = Math.floor(Date.now() / 1000) + 600;
  writeLeases(path, block("192.168.64.3", "e:1:a:0:b0:7", later) + block("192.168.64.4", "e:1:a:0:b0:8", 1000));
  expect(leaseFor(path, "0e:01:0a:00:b0:07")).toBe("192.168.64.3");
  expect(leaseFor(path, "0e:01:0a:00:b0:08")).toBeUndefined();
  expect(leaseFor(join(dir, "missing"), "0e:01:0a:00:b0:07")).toBeUndefined();
});

test("several unexpired leases of one MAC: the latest expiry wins wherever it stands in the file, as tart reads it (a tie: the later block)", () => {
  const path = join(dir, "several");
  const now = Math.floor(Date.now() / 1000);
  const mac = "e:1:a:0:b0:7";
  // bootpd writes the newest first; an older, still unexpired lease of the MAC follows it.
  const text = block("192.168.64.7", mac, now + 900) + block("192.168.64.3", mac, now + 300) + block("192.168.64.2", mac, now - 5);
  writeLeases(path, text);
  expect(leaseFor(path, "0e:01:0a:00:b0:07")).toBe("192.168.64.7");
  expect(leaseWatcher(path, "0e:01:0a:00:b0:07", systemClock)()).toBe("192.168.64.7");
  // What the sim's `tart ip` answers for the same file (its resolver is tart's Leases.swift).
  expect(resolveLease(text, "0e:01:0a:00:b0:07")?.ip).toBe("192.168.64.7");
  const tie = block("192.168.64.4", mac, now + 900) + block("192.168.64.5", mac, now + 900);
  writeLeases(path, tie);
  expect(leaseFor(path, "0e:01:0a:00:b0:07")).toBe("192.168.64.5");
  expect(resolveLease(tie, "0e:01:0a:00:b0:07")?.ip).toBe("192.168.64.5");
});

test("leaseWatcher sees a lease replaced under the same MAC (a restored clone's new address) and a lease that appears", () => {
  const path = join(dir, "two");
  const later = Math.floor(Date.now() / 1000) + 600;
  const lease = leaseWatcher(path, "0e:01:0a:00:b0:07", systemClock);
  expect(lease()).toBeUndefined();
  writeLeases(path, block("192.168.64.9", "a:a:a:a:a:a", later));
  expect(lease()).toBeUndefined();
  writeLeases(path, block("192.168.64.3", "e:1:a:0:b0:7", later));
  expect(lease()).toBe("192.168.64.3");
  writeLeases(path, block("192.168.64.5", "e:1:a:0:b0:7", later + 1));
  expect(lease()).toBe("192.168.64.5");
});

test("leaseWatcher judges expiry by the clock it is given", async () => {
  const path = join(dir, "expiring");
  const clock = new FakeClock(Date.parse("2030-01-01T00:00:00Z"));
  const expiresS = clock.now() / 1000 + 600;
  writeLeases(path, block("192.168.64.3", "e:1:a:0:b0:7", expiresS));
  const lease = leaseWatcher(path, "0e:01:0a:00:b0:07", clock);
  expect(lease()).toBe("192.168.64.3");
  await clock.advance(600_000);
  expect(lease()).toBeUndefined();
});
