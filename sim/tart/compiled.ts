// The simulated tart compiled into one executable (dist/sim/tart), so that a
// `tart` call costs what a native binary's start costs (about 10 ms of CPU)
// and not a shell, a Bun start and a transpile of sim/tart (about 30 ms):
// our loop calls tart hundreds of times a test file, and that CPU was what
// made a slow machine miss its deadlines. sim/bin/tart runs it when it is
// there. Built when missing or older than any file under sim/tart.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";

declare const SIM_TART_SOURCE: string | undefined;

/** sim/tart on disk, also from inside the compiled executable (whose own files are virtual). */
export const SIM_TART_DIR: string = typeof SIM_TART_SOURCE === "string" ? SIM_TART_SOURCE : import.meta.dir;
/** Whether this process is the compiled executable (it runs a .ts file only as bun does, with BUN_BE_BUN=1). */
export const COMPILED = typeof SIM_TART_SOURCE === "string";

const ROOT = resolve(SIM_TART_DIR, "..", "..");
const COMPILED_TART = join(ROOT, "dist", "sim", "tart");

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** Builds dist/sim/tart unless it is newer than every file under sim/tart. */
export function ensureCompiledTart(): string {
  if (existsSync(COMPILED_TART) && statSync(COMPILED_TART).mtimeMs >= newestSource(SIM_TART_DIR)) return COMPILED_TART;
  mkdirSync(join(ROOT, "dist", "sim"), { recursive: true });
  const tmp = `${COMPILED_TART}.${process.pid}.tmp`;
  const bun = join(ROOT, "node_modules", ".bin", "bun");
  const r = spawnSync(bun, ["build", "--compile", "--bytecode", "--format=esm", `--define=SIM_TART_SOURCE=${JSON.stringify(SIM_TART_DIR)}`, join(SIM_TART_DIR, "main.ts"), "--outfile", tmp], {
    cwd: ROOT, encoding: "utf8",
  });
  if (r.status !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`compiling the simulated tart failed: ${r.stderr || r.stdout}`);
  }
  // Another process may have built it meanwhile: a rename replaces either atomically.
  renameSync(tmp, COMPILED_TART);
  return COMPILED_TART;
}
