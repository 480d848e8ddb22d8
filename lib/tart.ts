// A typed wrapper around the `tart` CLI (contracts/tart.md). Each call has a
// timeout, its failures become errors that say what to do, and the time
// spent inside tart is counted so benchmarks can subtract it.
import { spawn } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { $ } from "zx/core";
import { MacosRunnerError, type ExitKind } from "./errors.ts";

export class TartError extends MacosRunnerError {
  readonly command: string;
  readonly tartExitCode: number;
  readonly stderr: string;
  constructor(message: string, command: string, tartExitCode: number, stderr: string, kind: ExitKind = "failure") {
    super(message, { kind });
    this.command = command;
    this.tartExitCode = tartExitCode;
    this.stderr = stderr;
  }
}
/** tart is not installed or host.tart_path is wrong. */
export class TartMissingError extends TartError {}
/** Apple's 2-VM limit: another VM (maybe not ours) is running on the host. */
export class VmLimitError extends TartError {}
/** `tart ip --wait` gave up: the VM never got an address. */
export class NoIpError extends TartError {}
/** The named VM does not exist (exit 2). */
export class VmNotFoundError extends TartError {}

export interface VmListing {
  Source: "local" | "OCI";
  Name: string;
  Running: boolean;
  State: string;
}

export interface TartOptions {
  path: string;
  /** Extra environment for tart (registry credentials, CI=true). */
  env?: Record<string, string>;
  insecure?: boolean;
}

export class Tart {
  /** Milliseconds spent waiting on tart processes, for benchmarks. */
  elapsedMs = 0;
  private readonly opts: TartOptions;

  constructor(opts: TartOptions) {
    this.opts = opts;
  }

  private async exec(args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string; code: number }> {
    const started = performance.now();
    const env = { ...process.env, CI: "true", ...this.opts.env };
    const p = await $({ quiet: true, nothrow: true, timeout: timeoutMs, env, input: "" })`${this.opts.path} ${args}`;
    this.elapsedMs += performance.now() - started;
    const code = p.exitCode ?? 1;
    if (code === 127) {
      throw new TartMissingError(
        `tart not found at "${this.opts.path}": install it (brew install cirruslabs/cli/tart) or fix host.tart_path`,
        args[0]!, code, p.stderr, "unavailable");
    }
    return { stdout: p.stdout, stderr: p.stderr.trim(), code: p.signal ? 124 : code };
  }

  private fail(what: string, args: string[], r: { stderr: string; code: number }): TartError {
    const detail = r.code === 124 ? "timed out" : r.stderr || `exit ${r.code}`;
    const message = `tart ${args[0]} failed (${what}): ${detail}`;
    if (/exceeds the system limit/.test(r.stderr)) {
      return new VmLimitError(`${message}. Another VM is running on this host; stop it (tart list) or lower host.slots.`, args[0]!, r.code, r.stderr);
    }
    if (/no IP address found/.test(r.stderr)) return new NoIpError(message, args[0]!, r.code, r.stderr);
    if (/does not exist/.test(r.stderr)) return new VmNotFoundError(message, args[0]!, r.code, r.stderr);
    return new TartError(message, args[0]!, r.code, r.stderr);
  }

  async clone(source: string, name: string, timeoutMs: number): Promise<void> {
    const args = ["clone", source, name, ...(this.opts.insecure ? ["--insecure"] : [])];
    const r = await this.exec(args, timeoutMs);
    if (r.code !== 0) throw this.fail(`${source} -> ${name}`, args, r);
  }

  async set(name: string, s: { cpu?: number; memoryMb?: number; randomMac?: boolean }): Promise<void> {
    const args = ["set", name];
    if (s.cpu) args.push("--cpu", String(s.cpu));
    if (s.memoryMb) args.push("--memory", String(s.memoryMb));
    if (s.randomMac) args.push("--random-mac");
    const r = await this.exec(args, 30_000);
    if (r.code !== 0) throw this.fail(name, args, r);
  }

  /**
   * Starts `tart run --no-graphics` in its own process group, detached, its
   * output appended to logFile. Returns the pid; the VM outlives this process
   * on purpose, so a crashed loop's VM is found and stopped by the next one.
   */
  runDetached(name: string, logFile: string): { pid: number; exited: Promise<{ code: number | null; signal: string | null }> } {
    const fd = openSync(logFile, "a", 0o600);
    const child = spawn(this.opts.path, ["run", "--no-graphics", name], {
      detached: true,
      stdio: ["ignore", fd, fd],
      env: { ...process.env, CI: "true", ...this.opts.env },
    });
    closeSync(fd);
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      child.on("exit", (code, signal) => resolve({ code, signal }));
      child.on("error", () => resolve({ code: 127, signal: null }));
    });
    child.unref();
    return { pid: child.pid ?? -1, exited };
  }

  async ip(name: string, waitS: number): Promise<string> {
    const args = ["ip", name, "--wait", String(Math.max(1, Math.ceil(waitS)))];
    const r = await this.exec(args, (waitS + 10) * 1000);
    if (r.code !== 0) throw this.fail(name, args, r);
    return r.stdout.trim();
  }

  /** Stops a VM; a VM that is not running (exit 2) counts as stopped. */
  async stop(name: string, timeoutS = 10): Promise<void> {
    const args = ["stop", name, "--timeout", String(timeoutS)];
    const r = await this.exec(args, (timeoutS + 10) * 1000);
    if (r.code !== 0 && r.code !== 2) throw this.fail(name, args, r);
  }

  /**
   * Deletes a VM, retrying briefly while tart still sees it running: `stop`
   * returns right after its SIGKILL (contracts/tart.md §2). Missing = deleted.
   */
  async delete(name: string, deadlineMs = 10_000): Promise<void> {
    const args = ["delete", name];
    const until = Date.now() + deadlineMs;
    for (;;) {
      const r = await this.exec(args, 30_000);
      if (r.code === 0 || r.code === 2) return;
      if (!/is running/.test(r.stderr) || Date.now() > until) throw this.fail(name, args, r);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  async list(): Promise<VmListing[]> {
    return this.listSource("local");
  }

  /** OCI cache entries: `host/ns:tag` links and `host/ns@sha256:…` images. */
  async listCached(): Promise<VmListing[]> {
    return this.listSource("oci");
  }

  private async listSource(source: "local" | "oci"): Promise<VmListing[]> {
    const args = ["list", "--format", "json", "--source", source];
    const r = await this.exec(args, 30_000);
    if (r.code !== 0) throw this.fail(`listing ${source === "oci" ? "cached images" : "VMs"}`, args, r);
    return JSON.parse(r.stdout) as VmListing[];
  }

  /** `tart pull` (credentials only in tart's environment); a large image takes a while. */
  async pull(ref: string, timeoutMs: number): Promise<void> {
    const args = ["pull", ref, ...(this.opts.insecure ? ["--insecure"] : [])];
    const r = await this.exec(args, timeoutMs);
    if (r.code !== 0) throw this.fail(ref, args, r);
  }
}
