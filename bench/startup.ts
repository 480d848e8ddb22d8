// Start-up of each binary: `<command> --help` (parses flags, prints, exits:
// the fixed cost every invocation pays) run N times; median wall time and CPU.
// The baseline's tools are timed the same way for comparison.
import { join } from "node:path";
import { BIN } from "../tests/helpers/e2e.ts";
import { median } from "./measure.ts";

export interface Startup {
  name: string;
  wallMs: number;
  cpuMs: number;
}

const OURS = ["loop", "token", "clone", "boot", "ssh-run", "cleanup", "status"];

function time(argv: string[], env: Record<string, string>, runs: number): { wallMs: number; cpuMs: number } {
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const r = Bun.spawnSync(argv, { env, stdout: "ignore", stderr: "ignore" });
    walls.push(performance.now() - started);
    cpus.push(Number(r.resourceUsage.cpuTime.total) / 1000);
    if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${r.exitCode}`);
  }
  return { wallMs: median(walls), cpuMs: median(cpus) };
}

export function startupTimes(env: Record<string, string>, tartPath: string, runs = 15): Startup[] {
  return [
    ...OURS.map((name) => ({ name, ...time([join(BIN, name), "--help"], env, runs) })),
    { name: "bash -c :", ...time(["bash", "-c", ":"], env, runs) },
    { name: "curl --version", ...time(["curl", "--version"], env, runs) },
    { name: "ssh -V", ...time(["ssh", "-V"], env, runs) },
    { name: "tart --version (sim)", ...time([tartPath, "--version"], env, runs) },
  ];
}
