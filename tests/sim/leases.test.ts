// The sim's DHCP lease file is macOS bootpd's format, read the way tart's
// Leases.swift reads it, so a product can read it directly as tart does.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startTartFixture, type TartFixture } from "../../sim/image/fixture.ts";
import { parseLeases, renderLeases, resolveLease } from "../../sim/tart/dhcpd-leases.ts";
import { readVMConfig, writeVMConfig } from "../../sim/tart/home.ts";
import { clone, killStarted, startRun, vmDir, waitFor } from "./helpers.ts";
import { runState } from "../../sim/tart/running.ts";

let fx: TartFixture;

beforeAll(async () => {
  fx = await startTartFixture({ registry: false, settings: { ssh_port: 2222, boot_ms: 100, ssh_ms: 100, lease_s: 600 } });
});
afterAll(async () => {
  killStarted();
  await fx?.stop();
});

const now = () => Math.floor(Date.now() / 1000);

describe("format", () => {
  test("bootpd's blocks: tab-indented, MAC octets without leading zeros, expiry as 0x hex epoch seconds", () => {
    const text = renderLeases([{ mac: "0a:1b:02:00:fe:0c", ip: "127.0.0.9", expires: 0x6565da9e, name: "admins-Virtual-Machine" }]);
    expect(text).toBe(
      "{\n\tname=admins-Virtual-Machine\n\tip_address=127.0.0.9\n\thw_address=1,a:1b:2:0:fe:c\n\tidentifier=1,a:1b:2:0:fe:c\n\tlease=0x6565da9e\n}\n",
    );
    expect(parseLeases(text)).toEqual([{ mac: "0a:1b:02:00:fe:0c", ip: "127.0.0.9", expires: 0x6565da9e, name: "admins-Virtual-Machine" }]);
  });

  test("as tart resolves: expired leases dropped, the later expiry wins, blocks without a field or of another hardware type ignored", () => {
    const mac = "02:00:00:00:00:01";
    const text = [
      "{\n\tip_address=10.0.0.1\n\thw_address=1,2:0:0:0:0:1\n\tlease=0x" + (now() - 1).toString(16) + "\n}",
      "{\n\tip_address=10.0.0.2\n\thw_address=1,2:0:0:0:0:1\n\tlease=0x" + (now() + 300).toString(16) + "\n}",
      "{\n\tip_address=10.0.0.3\n\thw_address=1,2:0:0:0:0:1\n\tlease=0x" + (now() + 600).toString(16) + "\n}",
      "{\n\tip_address=10.0.0.4\n\thw_address=6,2:0:0:0:0:1\n\tlease=0x" + (now() + 900).toString(16) + "\n}",
      "{\n\tip_address=10.0.0.5\n\thw_address=1,2:0:0:0:0:1\n}",
    ].join("\n");
    expect(resolveLease(text, mac)?.ip).toBe("10.0.0.3");
    expect(resolveLease(text, "02:00:00:00:00:02")).toBeUndefined();
    // The latest expiry wins where it stands first too (bootpd writes the newest lease first).
    const newestFirst = [
      "{\n\tip_address=10.0.0.7\n\thw_address=1,2:0:0:0:0:1\n\tlease=0x" + (now() + 900).toString(16) + "\n}",
      "{\n\tip_address=10.0.0.6\n\thw_address=1,2:0:0:0:0:1\n\tlease=0x" + (now() + 300).toString(16) + "\n}",
    ].join("\n");
    expect(resolveLease(newestFirst, mac)?.ip).toBe("10.0.0.7");
  });

  test("a malformed file is tart's error", () => {
    expect(() => parseLeases("{\n\tip_address=1.2.3.4\n{\n")).toThrow(
      'UnexpectedFormat(name: "unexpected DHCPD leases file format", message: "unexpected lease block start ({)", line: 3)',
    );
    expect(() => parseLeases("{\n\tjunk\n}\n")).toThrow('message: "key-value pair with only a key", line: 2');
    expect(() => parseLeases("{\n\tip_address=1.2.3.4\n")).toThrow('Truncated(name: "truncated DHCPD leases file")');
  });
});

describe("the file", () => {
  test("a booting guest's lease lands in $TART_HOME/sim/dhcpd_leases, which `tart ip` reads", async () => {
    clone(fx, "leased");
    const dir = vmDir(fx, "leased");
    writeVMConfig(dir, { ...readVMConfig(dir), macAddress: "0e:01:0a:00:b0:07" });
    const run = startRun(fx, "leased");
    const ip = await waitFor("the lease", () => runState(dir)?.ip);
    const text = readFileSync(join(fx.tartHome, "sim", "dhcpd_leases"), "utf8");
    const block = text.split("}\n").find((b) => b.includes(`ip_address=${ip}\n`))!;
    expect(block).toContain("\thw_address=1,e:1:a:0:b0:7\n");
    expect(block).toContain("\tidentifier=1,e:1:a:0:b0:7\n");
    const expiry = parseInt(/\tlease=0x([0-9a-f]+)\n/.exec(block)?.[1] ?? "", 16);
    expect(Math.abs(expiry - (now() + 600))).toBeLessThanOrEqual(2);
    expect(fx.tart("ip", "leased")).toEqual({ code: 0, stdout: `${ip}\n`, stderr: "" });
    run.proc.kill("SIGINT");
    await run.exited;
  });

  test("`leases_file` moves it; a missing file means no address; a malformed one is tart's error, exit 1", async () => {
    const moved = join(fx.dir, "dhcpd_leases.moved");
    fx.setTart({ leases_file: moved });
    clone(fx, "moved");
    const mac = readVMConfig(vmDir(fx, "moved")).macAddress;
    expect(fx.tart("ip", "moved").stderr).toBe("no IP address found, is your VM running?\n");
    writeFileSync(moved, renderLeases([{ mac, ip: "127.0.0.77", expires: now() + 60, name: "n" }]));
    expect(fx.tart("ip", "moved").stdout).toBe("127.0.0.77\n");
    // Two unexpired leases of the VM's MAC: the latest expiry wins, not the last block.
    writeFileSync(moved, renderLeases([{ mac, ip: "127.0.0.78", expires: now() + 600, name: "n" }, { mac, ip: "127.0.0.77", expires: now() + 60, name: "n" }]));
    expect(fx.tart("ip", "moved").stdout).toBe("127.0.0.78\n");
    writeFileSync(moved, "{\n\tip_address=127.0.0.77\n");
    expect(fx.tart("ip", "moved")).toEqual({ code: 1, stdout: "", stderr: 'Error: Truncated(name: "truncated DHCPD leases file")\n' });
    fx.setTart({ leases_file: undefined });
  });
});
