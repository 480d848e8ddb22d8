// The system OpenSSH client, pinned to the golden image's host key. Guests get
// a new IP every cycle, so the key is pinned under one alias, not per address.
import { connect } from "node:net";

/** known_hosts lines for the image's host key use this name (see docs/hosts.md). */
export const HOST_KEY_ALIAS = "macos-runner-guest";

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  knownHostsPath: string;
}

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

/** Whether an SSH server answers at host:port with its banner ("SSH-2.0-…") within timeoutMs. */
export function bannerAt(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
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
