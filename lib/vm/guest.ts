// Commands in the guest, over the transport vm.transport names (docs/transport.md):
//   exec: `tart exec NAME /bin/sh -c CMD`, through the VM's control socket and
//         the tart guest agent; no IP traffic, so Local Network privacy has
//         nothing to refuse.
//   ssh:  `/usr/bin/ssh -F /dev/null …` to the guest's address, host key
//         pinned (lib/vm/ssh.ts); needs the Local Network grant on macOS 15+.
// Our own process never opens a socket to a guest: readiness is a command run
// this way too (`true`), never a connect() of ours.
import { finished as streamEnded } from "node:stream/promises";
import { ConfigError, type Config } from "../config/index.ts";
import { LocalNetworkError } from "../core/errors.ts";
import { sh, type Finished } from "../core/proc.ts";
import { sshArgs } from "./ssh.ts";
import { guestProcessOf, type GuestProcess, type Tart } from "./tart.ts";

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
}

/**
 * Starts `command` (a /bin/sh command line) in the guest over vm.transport:
 * `tart exec` through the Tart given, or the system ssh. `input` goes to the
 * command's stdin, then it is closed: the one way a secret reaches the guest,
 * never argv.
 */
export function startInGuest(config: Config, tart: Tart, target: GuestTarget, command: string, o: { input?: string; signal?: AbortSignal } = {}): GuestProcess {
  if (config.vm.transport === "exec") return tart.exec(target.vm, command, o);
  const argv = sshArgv(config, target.ip, command);
  return guestProcessOf(sh({ ...(o.input !== undefined && { input: o.input }), ...(o.signal && { signal: o.signal }) })`exec ${argv}`);
}

/** argv of the system ssh running `command` in the guest at `ip`, its host key pinned. No secret ever goes here. */
export const sshArgv = (config: Config, ip: string, command: string): string[] =>
  [SSH_PATH, "-F", "/dev/null", ...sshArgs({ host: ip, ...sshSettings(config) }, command)];

/** The bytes a stream gives until it ends (or fails, or is destroyed). */
function collect(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on("data", (d: Buffer | string) => chunks.push(typeof d === "string" ? Buffer.from(d) : d));
  return streamEnded(stream).catch(() => {}).then(() => Buffer.concat(chunks).toString("utf8"));
}

/**
 * Runs a short command in the guest and waits for its end; past timeoutMs it
 * is killed (exit 124, as a command ended by a signal).
 */
export async function runInGuest(config: Config, tart: Tart, target: GuestTarget, command: string, timeoutMs: number, signal?: AbortSignal): Promise<Finished> {
  const p = startInGuest(config, tart, target, command, signal ? { signal } : {});
  const output = Promise.all([collect(p.stdout), collect(p.stderr)]);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    p.kill("SIGTERM");
  }, timeoutMs);
  const end = await p.exited.finally(() => clearTimeout(timer));
  const [stdout, stderr] = await output;
  return { code: end.code ?? (end.signal !== null ? 124 : 1), stdout, stderr: stderr.trim(), timedOut };
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
export async function probeGuest(config: Config, tart: Tart, target: GuestTarget, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const r = await runInGuest(config, tart, target, "true", timeoutMs, signal);
  // A host key that does not match is an answer too: the run that follows refuses it (exit 84), not a boot timeout.
  return { ok: r.code === 0 || HOST_KEY_REFUSED.test(r.stderr), refused: noRouteToHost(r.stderr), stderr: r.stderr };
}
