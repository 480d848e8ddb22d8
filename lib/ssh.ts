// The system OpenSSH client, pinned to the golden image's host key. Guests get
// a new IP every cycle, so the key is pinned under one alias, not per address.
import { connect } from "node:net";
import { MacosRunnerError } from "./errors.ts";

/** known_hosts lines for the image's host key use this name (see docs/hosts.md). */
export const HOST_KEY_ALIAS = "macos-runner-guest";

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  knownHostsPath: string;
}

/** Raised when ssh refuses the guest's host key: the VM is not the image we pinned. */
export class HostKeyMismatchError extends MacosRunnerError {}

/** argv for `ssh` to run `command` in the guest; no secret ever goes here. */
export function sshArgs(t: SshTarget, command: string): string[] {
  return [
    "-p", String(t.port),
    "-i", t.privateKeyPath,
    "-o", "BatchMode=yes",
    "-o", "IdentitiesOnly=yes",
    "-o", "StrictHostKeyChecking=yes",
    "-o", `UserKnownHostsFile=${t.knownHostsPath}`,
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", `HostKeyAlias=${HOST_KEY_ALIAS}`,
    "-o", "ConnectTimeout=10",
    "-o", "ServerAliveInterval=5",
    "-o", "ServerAliveCountMax=3",
    "-o", "LogLevel=ERROR",
    "-T",
    `${t.user}@${t.host}`,
    command,
  ];
}

/**
 * Resolves once the guest's SSH server sends its banner ("SSH-2.0-…"),
 * polling every pollMs until the deadline. Fast polling keeps the lag between
 * "VM reachable" and "runner started" low.
 */
export async function waitForSshBanner(host: string, port: number, deadline: number, pollMs = 50, isAlive: () => boolean = () => true): Promise<void> {
  for (;;) {
    if (await probeBanner(host, port, Math.max(100, Math.min(2000, deadline - Date.now())))) return;
    if (!isAlive()) throw new MacosRunnerError(`the VM exited while waiting for SSH on ${host}:${port}`);
    if (Date.now() + pollMs > deadline) {
      throw new MacosRunnerError(`no SSH banner from ${host}:${port} before the boot deadline (vm.boot_timeout); is Remote Login enabled in the image?`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

function probeBanner(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let buffered = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      if (buffered.includes("\n")) done(buffered.startsWith("SSH-"));
    });
    socket.on("error", () => done(false));
    socket.on("close", () => done(false));
  });
}
