// Shared by the end-to-end tests: the compiled binaries, a loop run as a real
// process against a world, and polling with deadlines.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseLogLines, type LogLine } from "../../sim/logs.ts";

export { events } from "../../sim/logs.ts";
import type { World } from "../../sim/world.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const BIN = join(ROOT, "dist", "linux-x64");

/** `npm test` builds first; a lone `bun test tests/e2e…` builds here. The names are links to macos-runner. */
export function ensureBinaries(names: string[]): void {
  if (["macos-runner", ...names].every((n) => existsSync(join(BIN, n)))) return;
  const r = spawnSync(process.execPath, [join(ROOT, "tools/build.ts"), "--target", "linux-x64"], { stdio: "inherit" });
  if (r.status !== 0) throw new Error("building the linux-x64 binaries failed");
}

export function worldEnv(world: World): Record<string, string> {
  return { HOME: process.env.HOME ?? "/root", ...world.env };
}

export interface Run {
  child: ChildProcess;
  /** The log lines written so far (JSON lines on stderr). */
  lines(): LogLine[];
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string; lines: LogLine[] }>;
}

/** Every binary a test started: none may outlive the test process (a timed-out test would leave it running). */
const started = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});

/** Starts a compiled binary (never bun run) with the world's environment. */
export function start(world: World, name: string, args: string[], extraEnv: Record<string, string> = {}): Run {
  const child = spawn(join(BIN, name), args, { env: { ...worldEnv(world), ...extraEnv }, stdio: ["pipe", "pipe", "pipe"] });
  started.add(child);
  child.on("exit", () => started.delete(child));
  let stderr = "";
  let stdout = "";
  child.stderr!.on("data", (d) => (stderr += d));
  child.stdout!.on("data", (d) => (stdout += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string; lines: LogLine[] }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stderr, stdout, lines: parseLogLines(stderr) })),
  );
  return { child, done, lines: () => parseLogLines(stderr) };
}

export function loop(world: World, config: string, slot = 1) {
  return start(world, "loop", ["--slot", String(slot), "--config", config]).done;
}

export async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** VMs the (simulated) tart knows about, via the real CLI. */
export function tartVms(world: World): string[] {
  const r = spawnSync("tart", ["list", "--format", "json", "--source", "local"], { env: worldEnv(world), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`tart list failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { Name: string }[]).map((v) => v.Name).filter((n) => n.startsWith("sim-"));
}

export function slotState(stateDir: string, slot = 1): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir, `slot-${slot}.json`), "utf8"));
  } catch {
    return undefined;
  }
}

