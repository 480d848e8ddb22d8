// OpenSSH options pinned to the golden image's host key. Guests get a new IP
// every cycle, so the key is pinned under one alias (known_hosts), not per address.
export const HOST_KEY_ALIAS = "macos-runner-guest";

interface SshTarget {
  host: string;
  port: number;
  user: string;
  privateKeyPath: string;
  knownHostsPath: string;
}

/** No secret ever goes here. */
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
