// How a guest command is run on each transport (lib/vm/guest.ts), and how
// what tart exec and ssh print maps to what the product does: the guest agent
// not answering yet (start again), "No route to host" (a Local Network
// refusal, its own error and exit code, with the fix in the message).
import { describe, expect, test } from "bun:test";
import type { Config } from "../lib/config/index.ts";
import { exitCode, LocalNetworkError } from "../lib/core/errors.ts";
import { failureReason } from "../lib/host/metrics/definitions.ts";
import { agentUnreachable, guestArgv, localNetworkError, noRouteToHost, SSH_PATH } from "../lib/vm/guest.ts";

const config = (transport: "exec" | "ssh") =>
  ({
    vm: { transport, ssh: { user: "admin", port: 22, privateKeyPath: "/k/id", knownHostsPath: "/k/known_hosts" } },
    host: { tartPath: "/opt/homebrew/bin/tart" },
  }) as unknown as Config;
const target = { vm: "mr-h-1-abc", ip: "192.168.64.7" };

describe("guestArgv", () => {
  test("exec: tart exec by VM name, /bin/sh -c the command, -i only when stdin is streamed", () => {
    expect(guestArgv(config("exec"), target, "echo hi", { stdin: true })).toEqual(["/opt/homebrew/bin/tart", "exec", "-i", "mr-h-1-abc", "/bin/sh", "-c", "echo hi"]);
    expect(guestArgv(config("exec"), target, "true", { stdin: false })).toEqual(["/opt/homebrew/bin/tart", "exec", "mr-h-1-abc", "/bin/sh", "-c", "true"]);
  });

  test("ssh: /usr/bin/ssh by absolute path, -F /dev/null first, the host key pinned, the command last", () => {
    const argv = guestArgv(config("ssh"), target, "true", { stdin: false });
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
