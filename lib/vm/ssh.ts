// The system OpenSSH client's options (vm.transport ssh; lib/vm/guest.ts
// runs it), pinned to the golden image's host key. Guests get a new IP every
// cycle, so the key is pinned under one alias, not per address.

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
