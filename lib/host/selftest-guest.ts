// How the selftest runs a command in the guest: over `ssh` (the system
// client, pinned to the image's host key) or over `tart exec` (the tart guest
// agent, no network). The cycle's own checks (runner, sudo, clock) go over
// the transport the slots use; the transport checks try both.
import type { Config } from "../config.ts";
import { finished, sh, type Finished } from "../proc.ts";
import { sshArgs } from "../ssh.ts";

export type Transport = "ssh" | "exec";

export interface GuestShell {
  transport: Transport;
  /** Runs `command` with the guest user's shell; never a secret in it. */
  run(command: string, timeoutMs: number): Promise<Finished>;
}

/** The transport the slots use to reach a guest. */
export function slotTransport(_config: Config): Transport {
  return "ssh";
}

export function sshShell(config: Config, ip: string): GuestShell {
  const { ssh } = config.vm;
  const target = { host: ip, port: ssh.port, user: ssh.user, privateKeyPath: ssh.privateKeyPath, knownHostsPath: ssh.knownHostsPath };
  return {
    transport: "ssh",
    run: (command, timeoutMs) => finished(sh({ timeoutMs })`exec ssh ${sshArgs(target, command)}`),
  };
}

export function execShell(config: Config, vm: string): GuestShell {
  return {
    transport: "exec",
    run: (command, timeoutMs) => finished(sh({ timeoutMs, env: { CI: "true" } })`exec ${config.host.tartPath} exec ${vm} /bin/sh -c ${command}`),
  };
}

export function guestShell(config: Config, transport: Transport, vm: string, ip: string): GuestShell {
  return transport === "exec" ? execShell(config, vm) : sshShell(config, ip);
}
