// Simulated commands compiled into standalone executables under dist/sim/, so
// that a call costs what a native binary's start costs (about 10 ms of CPU)
// and not a Bun start and a transpile (about 90 ms): the slots and selftest
// call them hundreds of times a test file. The shims in sim/bin run the
// compiled one when it is there. Each is built when missing, or when a file
// its last build bundled is newer or gone (the bundle's inputs, from Bun's
// metafile, are kept beside it in NAME.inputs, one path a line).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";
import { writeFileAtomic } from "../lib/core/fs.ts";

const ROOT = resolve(import.meta.dir, "..");
/** Where what the simulated world is built from is kept: per checkout, rebuilt when stale. */
export const DIST_SIM = join(ROOT, "dist", "sim");

function upToDate(executable: string, inputs: string): boolean {
  if (!existsSync(executable) || !existsSync(inputs)) return false;
  const built = statSync(executable).mtimeMs;
  return readFileSync(inputs, "utf8").split("\n").filter(Boolean).every((path) => existsSync(path) && statSync(path).mtimeMs <= built);
}

/** Builds dist/sim/NAME from ENTRY unless it is newer than every file it bundles; `defines` are Bun's --define. */
export function ensureCompiled(name: string, entry: string, defines: Record<string, string> = {}): string {
  const executable = join(DIST_SIM, name);
  const inputs = `${executable}.inputs`;
  if (upToDate(executable, inputs)) return executable;
  mkdirSync(DIST_SIM, { recursive: true });
  const tmp = `${executable}.${process.pid}.tmp`;
  const meta = `${tmp}.meta.json`;
  const bun = join(ROOT, "node_modules", ".bin", "bun");
  const defineArgs = Object.entries(defines).map(([k, v]) => `--define=${k}=${JSON.stringify(v)}`);
  // Run in dist/sim: an interrupted build leaves its temporary file in the working directory.
  const r = spawnSync(bun, ["build", "--compile", "--bytecode", "--format=esm", ...defineArgs, entry, "--outfile", tmp, `--metafile=${meta}`], {
    cwd: DIST_SIM, encoding: "utf8",
  });
  try {
    if (r.status !== 0) throw new Error(`compiling the simulated ${name} (${entry}) failed: ${r.stderr || r.stdout}`);
    const bundled = Object.keys((JSON.parse(readFileSync(meta, "utf8")) as { inputs: Record<string, unknown> }).inputs);
    // Another process may have built it meanwhile: a rename replaces either atomically.
    writeFileAtomic(inputs, bundled.map((p) => `${resolve(DIST_SIM, p)}\n`).join(""), 0o644, { sync: false });
    renameSync(tmp, executable);
  } finally {
    for (const f of [tmp, meta]) rmSync(f, { force: true });
  }
  return executable;
}

/** dist/sim/launchctl, which sim/bin/launchctl runs (sim/launchctl.ts compiled). */
export function ensureCompiledLaunchctl(): string {
  return ensureCompiled("launchctl", join(ROOT, "sim", "launchctl.ts"), { SIM_LAUNCHCTL_COMPILED: "true" });
}
