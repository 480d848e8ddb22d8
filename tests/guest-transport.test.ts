// How a guest command is run on each transport (lib/vm/guest.ts; tart exec
// against a recording tart at host.tart_path), and how
// what tart exec and ssh print maps to what the product does: the guest agent
// not answering yet (start again), "No route to host" (a Local Network
// refusal, its own error and exit code, with the fix in the message).
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import type { Config } from "../lib/config/index.ts";
import { exitCode, LocalNetworkError } from "../lib/core/errors.ts";
import { poll } from "../lib/core/wait.ts";
import { failureReason } from "../lib/host/metrics/definitions.ts";
import { agentUnreachable, localNetworkError, noRouteToHost, runInGuest, SSH_PATH, sshArgv, startInGuest } from "../lib/vm/guest.ts";
import { TartCli } from "../lib/vm/tart.ts";

const config = (transport: "exec" | "ssh") =>
  ({
    vm: { transport, ssh: { user: "admin", port: 22, privateKeyPath: "/k/id", knownHostsPath: "/k/known_hosts" } },
    host: { tartPath: "/opt/homebrew/bin/tart" },
  }) as unknown as Config;
const target = { vm: "mr-h-1-abc", ip: "192.168.64.7" };

/**
 * A tart at host.tart_path that records what it was started with: its argv,
 * its pid (the shell `exec`s it, so its pid is the process we started), its
 * TART_HOME and any registry variable, then plays the guest: with -i copies
 * its stdin to stdout, and with `sleep` in the command waits to be killed.
 */
function recordingTart(): { path: string; record: string } {
  const dir = mkdtempSync(join(tmpdir(), "guest-transport-"));
  const record = join(dir, "record");
  const path = join(dir, "tart");
  writeFileSync(path, [
    "#!/bin/sh",
    `{ echo "pid=$$"; echo "home=$TART_HOME"; env | grep '^TART_REGISTRY_' ; for a in "$@"; do echo "arg=$a"; done; } > ${record}`,
    'case "$*" in *sleep*) exec sleep 30;; esac',
    '[ "$2" = -i ] && exec cat',
    "exit 0",
    "",
  ].join("\n"));
  chmodSync(path, 0o755);
  return { path, record };
}

const recorded = (record: string, key: string) => readFileSync(record, "utf8").split("\n").filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("tart exec (TartCli.exec)", () => {
  test("argv is `exec -i NAME /bin/sh -c CMD` with input, which reaches stdin and is closed; TART_HOME is the Tart's; no registry credentials, not even inherited ones", async () => {
    const fake = recordingTart();
    const tart = new TartCli({ path: fake.path, env: { TART_HOME: "/tmp/the-vms-home" }, credentials: { TART_REGISTRY_PASSWORD: "for-clone-only" } });
    process.env.TART_REGISTRY_USERNAME = "inherited";
    try {
      const p = tart.exec("mr-h-1-abc", "echo hi", { input: "secret-jit\n" });
      const out = await new Response(Readable.toWeb(p.stdout as Readable) as ReadableStream).text();
      expect(await p.exited).toEqual({ code: 0, signal: null });
      expect(out).toBe("secret-jit\n");
    } finally {
      delete process.env.TART_REGISTRY_USERNAME;
    }
    expect(recorded(fake.record, "arg")).toEqual(["exec", "-i", "mr-h-1-abc", "/bin/sh", "-c", "echo hi"]);
    expect(recorded(fake.record, "home")).toEqual(["/tmp/the-vms-home"]);
    expect(readFileSync(fake.record, "utf8")).not.toContain("TART_REGISTRY_");
  });

  test("without input there is no -i", async () => {
    const fake = recordingTart();
    const r = await runInGuest(config("exec"), new TartCli({ path: fake.path }), target, "true", 10_000);
    expect(r).toMatchObject({ code: 0, timedOut: false });
    expect(recorded(fake.record, "arg")).toEqual(["exec", "mr-h-1-abc", "/bin/sh", "-c", "true"]);
  });

  test("kill ends tart exec itself, and exited says by which signal", async () => {
    const fake = recordingTart();
    const p = startInGuest(config("exec"), new TartCli({ path: fake.path }), target, "sleep 30");
    const pid = Number(await poll(() => (existsSync(fake.record) ? recorded(fake.record, "pid")[0] : undefined), { deadline: Date.now() + 10_000, everyMs: 20 }));
    p.kill();
    expect(await p.exited).toEqual({ code: null, signal: "SIGTERM" });
    expect(alive(pid)).toBe(false);
  });

  test("a short command past its deadline is killed: exit 124, timed out", async () => {
    const fake = recordingTart();
    const started = Date.now();
    const r = await runInGuest(config("exec"), new TartCli({ path: fake.path }), target, "sleep 30", 300);
    expect(r).toMatchObject({ code: 124, timedOut: true });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(alive(Number(recorded(fake.record, "pid")[0]))).toBe(false);
  });

  test("host.tart_path a wrapper that runs tart in a session of its own and forwards nothing: a command past its deadline still ends, tart exec with it", async () => {
    const fake = recordingTart();
    const wrapper = join(dirname(fake.path), "wrapper");
    writeFileSync(wrapper, `#!/bin/sh\nsetsid --wait "${fake.path}" "$@"\nexit $?\n`);
    chmodSync(wrapper, 0o755);
    const started = Date.now();
    const r = await runInGuest(config("exec"), new TartCli({ path: wrapper }), target, "sleep 30", 300);
    expect(r).toMatchObject({ code: 124, timedOut: true });
    expect(Date.now() - started).toBeLessThan(10_000);
    // tart exec ended too, not left behind for its own 30 s.
    const tartPid = Number(recorded(fake.record, "pid")[0]);
    expect(await poll(() => (alive(tartPid) ? undefined : true), { deadline: Date.now() + 5_000, everyMs: 20 })).toBe(true);
  });
});

describe("ssh argv", () => {
  test("/usr/bin/ssh by absolute path, -F /dev/null first, the host key pinned, the command last", () => {
    const argv = sshArgv(config("ssh"), target.ip, "true");
    expect(SSH_PATH).toBe("/usr/bin/ssh");
    expect(argv.slice(0, 3)).toEqual(["/usr/bin/ssh", "-F", "/dev/null"]);
    expect(argv).toContain("StrictHostKeyChecking=yes");
    expect(argv).toContain("UserKnownHostsFile=/k/known_hosts");
    expect(argv.slice(-2)).toEqual(["admin@192.168.64.7", "true"]);
  });
});

describe("what tart exec and ssh say", () => {
  test("the guest agent not answering is tart exec's connection error, not the command's", () => {
    expect(agentUnreachable("Failed to connect to the VM using its control socket: The operation couldn’t be completed. (GRPC.GRPCConnectionPoolError error 1.), is the Tart Guest Agent running?")).toBe(true);
    expect(agentUnreachable("Error: unavailable (14): Transport became inactive")).toBe(false);
    expect(agentUnreachable('VM "x" is not running')).toBe(false);
  });

  test("EHOSTUNREACH (ssh: No route to host) is a Local Network refusal: exit 77, its own failure reason, the fix in the message", () => {
    expect(noRouteToHost("ssh: connect to host 192.168.64.7 port 22: No route to host")).toBe(true);
    expect(noRouteToHost("ssh: connect to host 192.168.64.7 port 22: Connection refused")).toBe(false);
    const err = localNetworkError("192.168.64.7", "ssh: connect to host 192.168.64.7 port 22: No route to host");
    expect(err).toBeInstanceOf(LocalNetworkError);
    expect(err.exitCode).toBe(exitCode("local-network"));
    expect(err.exitCode).toBe(77);
    expect(failureReason(err)).toBe("local_network");
    expect(err.message).toContain("192.168.64.7");
    expect(err.message).toContain("vm.transport: exec");
    expect(err.message).toContain("System Settings > Privacy & Security > Local Network");
  });
});
