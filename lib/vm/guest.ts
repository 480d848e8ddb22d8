// Commands in the guest over vm.transport (docs/transport.md): `tart exec`
// (no IP traffic, so Local Network privacy has nothing to refuse) or the system
// ssh (needs the Local Network grant on macOS 15+). We never open a socket to a
// guest ourselves: readiness is `true` run this way too.
import { finished as streamEnded } from "node:stream/promises";
import { ConfigError, type Config } from "../config/index.ts";
import { LocalNetworkError } from "../core/errors.ts";
import { sh, type Finished } from "../core/proc.ts";
import { sshArgs } from "./ssh.ts";
import { guestProcessOf, type GuestProcess, type Tart } from "./tart.ts";

/** Not a Homebrew ssh earlier on PATH; `-F /dev/null` keeps ~/.ssh/config out. */
export const SSH_PATH = "/usr/bin/ssh";

export type Transport = "exec" | "ssh";

export const transportCommand = (transport: Transport): string => (transport === "ssh" ? "ssh" : "tart exec");

export interface GuestTarget {
  /** For tart exec. */
  vm: string;
  /** For ssh. */
  ip: string;
}

/** `input` goes to stdin, then it is closed: the one way a secret reaches the guest, never argv. */
export function startInGuest(config: Config, tart: Tart, target: GuestTarget, command: string, o: { input?: string; signal?: AbortSignal } = {}): GuestProcess {
  if (config.vm.transport === "exec") return tart.exec(target.vm, command, o);
  const argv = sshArgv(config, target.ip, command);
  return guestProcessOf(sh({ ...(o.input !== undefined && { input: o.input }), ...(o.signal && { signal: o.signal }) })`exec ${argv}`);
}

/** No secret ever goes here. */
export const sshArgv = (config: Config, ip: string, command: string): string[] =>
  [SSH_PATH, "-F", "/dev/null", ...sshArgs({ host: ip, ...sshSettings(config) }, command)];

function collect(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  stream.on("data", (d: Buffer | string) => chunks.push(typeof d === "string" ? Buffer.from(d) : d));
  return streamEnded(stream).catch(() => {}).then(() => Buffer.concat(chunks).toString("utf8"));
}

/** A short command; past timeoutMs it is killed (exit 124). */
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
  // Past its deadline is 124 (as timeout(1)), whatever the kill made of the exit: a wrapper's shell may exit 143 itself.
  return { code: timedOut ? 124 : (end.code ?? 1), stdout, stderr: stderr.trim(), timedOut };
}

/** vm.ssh is required with vm.transport ssh only. */
export function sshSettings(config: Config): NonNullable<Config["vm"]["ssh"]> {
  const { ssh } = config.vm;
  if (!ssh) throw new ConfigError(`config ${config.file} has no vm.ssh section, which ssh to the guest needs; add vm.ssh with private_key_path and known_hosts_path (docs/config.md)`);
  return ssh;
}

const HOST_KEY_REFUSED = /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/;

/** tart exec's words (Exec.swift) for an agent that does not answer yet: the command never started, safe to run again. */
export const agentUnreachable = (stderr: string) => /is the Tart Guest Agent running\?/.test(stderr);
/** EHOSTUNREACH: on macOS 15+ a Local Network refusal of a LaunchAgent (or its children). */
export const noRouteToHost = (stderr: string) => /No route to host/.test(stderr);

export function localNetworkError(ip: string, detail: string): LocalNetworkError {
  return new LocalNetworkError(
    `cannot reach the guest at ${ip}: ${detail}. On macOS 15+ this is Local Network privacy refusing the slot agent: ` +
      "set vm.transport: exec (the tart guest agent; no network needed), or grant Local Network to the agent in " +
      "System Settings > Privacy & Security > Local Network (see docs/hosts.md)",
  );
}

/** One readiness probe: `true` in the guest; `refused` is a Local Network refusal. */
export async function probeGuest(config: Config, tart: Tart, target: GuestTarget, timeoutMs: number, signal?: AbortSignal): Promise<{ ok: boolean; refused?: boolean; stderr: string }> {
  const r = await runInGuest(config, tart, target, "true", timeoutMs, signal);
  // A host key that does not match is an answer too: the run that follows refuses it (exit 84), not a boot timeout.
  return { ok: r.code === 0 || HOST_KEY_REFUSED.test(r.stderr), refused: noRouteToHost(r.stderr), stderr: r.stderr };
}
