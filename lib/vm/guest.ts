// Commands in the guest, over the transport vm.transport names (docs/transport.md):
//   exec: `tart exec NAME /bin/sh -c CMD`, through the VM's control socket and
//         the tart guest agent; no IP traffic, so Local Network privacy has
//         nothing to refuse.
//   ssh:  `/usr/bin/ssh -F /dev/null …` to the guest's address, host key
//         pinned (lib/vm/ssh.ts); needs the Local Network grant on macOS 15+.
// Our own process never opens a socket to a guest: readiness is a command run
// this way too (`true`), never a connect() of ours.
import { ConfigError, type Config } from "../config/index.ts";
import { LocalNetworkError } from "../core/errors.ts";
import { finished, sh } from "../core/proc.ts";
import { sshArgs } from "./ssh.ts";

/**
 * The system OpenSSH by absolute path: a Homebrew ssh earlier on the agents'
 * PATH is not used, and `-F /dev/null` keeps the user's ~/.ssh/config out.
 */
export const SSH_PATH = "/usr/bin/ssh";

export type Transport = "exec" | "ssh";

/** The command a transport runs, as messages name it: "tart exec" or "ssh". */
export const transportCommand = (transport: Transport): string => (transport === "ssh" ? "ssh" : "tart exec");

export interface GuestTarget {
  /** The VM's name (tart exec). */
  vm: string;
  /** The guest's address (ssh). */
  ip: string;
  /** TART_HOME of the VM (tart exec), when not our own environment's. */
  tartHome?: string | undefined;
}

/** The environment a guest command runs with: tart exec must find the VM's home. */
export const guestEnv = (target: GuestTarget): Record<string, string> => (target.tartHome ? { TART_HOME: target.tartHome } : {});

/** argv that runs `command` (a /bin/sh command line) in the guest; `stdin` streams ours to it. No secret ever goes here. */
export function guestArgv(config: Config, target: GuestTarget, command: string, o: { stdin: boolean }): string[] {
  if (config.vm.transport === "exec") {
    return [config.host.tartPath, "exec", ...(o.stdin ? ["-i"] : []), target.vm, "/bin/sh", "-c", command];
  }
  return [SSH_PATH, "-F", "/dev/null", ...sshArgs({ host: target.ip, ...sshSettings(config) }, command)];
}

/** vm.ssh: the config requires it with vm.transport ssh; with exec it may be missing, and then nothing may ssh to the guest. */
export function sshSettings(config: Config): NonNullable<Config["vm"]["ssh"]> {
  const { ssh } = config.vm;
  if (!ssh) throw new ConfigError(`config ${config.file} has no vm.ssh section, which ssh to the guest needs; add vm.ssh with private_key_path and known_hosts_path (docs/config.md)`);
  return ssh;
}

/** tart exec's words for "the guest agent does not answer (yet)" (Exec.swift); exit 1 before any output. */
const AGENT_UNREACHABLE = /is the Tart Guest Agent running\?/;
/** ssh's words for EHOSTUNREACH: on macOS 15+ a Local Network refusal of a LaunchAgent (or its children). */
const NO_ROUTE = /No route to host/;

/** ssh refused the guest's host key (it does not match vm.ssh.known_hosts_path). */
const HOST_KEY_REFUSED = /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/;

/** The agent did not answer: a command that never started in the guest, safe to run again. */
export const agentUnreachable = (stderr: string) => AGENT_UNREACHABLE.test(stderr);
/** The connection to the guest's address was refused with EHOSTUNREACH. */
export const noRouteToHost = (stderr: string) => NO_ROUTE.test(stderr);

export function localNetworkError(ip: string, detail: string): LocalNetworkError {
  return new LocalNetworkError(
    `cannot reach the guest at ${ip}: ${detail}. On macOS 15+ this is Local Network privacy refusing the slot agent: ` +
      "set vm.transport: exec (the tart guest agent; no network needed), or grant Local Network to the agent in " +
      "System Settings > Privacy & Security > Local Network (see docs/hosts.md)",
  );
}

export interface ProbeResult {
  ok: boolean;
  /** ssh said "No route to host": a Local Network refusal on a Mac. */
  refused?: boolean;
  stderr: string;
}

/**
 * One readiness probe: `true` in the guest. A probe that has not answered
 * within timeoutMs is killed, which harms nothing (`true` has no effect),
 * and frees the caller from tart's own reconnect backoff (1 s, then x1.6)
 * that holds a `tart exec` made before the agent answers.
 */
export async function probeGuest(config: Config, target: GuestTarget, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const argv = guestArgv(config, target, "true", { stdin: false });
  const r = await finished(sh({ timeoutMs, env: guestEnv(target), ...(signal && { signal }) })`exec ${argv}`);
  // A host key that does not match is an answer too: the run that follows refuses it (exit 84), not a boot timeout.
  return { ok: r.code === 0 || HOST_KEY_REFUSED.test(r.stderr), refused: noRouteToHost(r.stderr), stderr: r.stderr };
}
