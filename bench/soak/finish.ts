// The end of a soak run, as on a real host: what `install --remove` does
// (the agents booted out, then `cleanup --slot N` for each slot), and then
// the next launch of each slot, which serves one job and retires the ghost
// runners GitHub has let go of. What is left after each is the evidence.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { SimState } from "../../sim/github/client.ts";
import type { Agent } from "../../sim/launchd.ts";
import { BIN, HOST_ID, ORG, PREFIX, SLOTS, TIMING, type SoakHost } from "./setup.ts";

/** GHOST_RETRY_MS in lib/slot/recover.ts: a slot retries its ghost runners at most once a minute. */
const GHOST_RETRY_MS = 60_000;

export interface TartVm {
  Name: string;
  Running: boolean;
}

export interface Finished {
  /** Our VMs after the bootout and the cleanup. */
  vmsLeft: string[];
  /** GitHub API calls for the org, by endpoint, up to the end of the cleanup. */
  apiCalls: Record<string, number>;
  /** GitHub and tart after the next launch (and a cleanup after it). */
  after: SimState;
  listed: TartVm[];
  /** The output of the cleanup and next-start runs. */
  output: { file: string; text: string }[];
}

/** Every VM in the host's tart home (ours and the neighbours'). */
export function tartList(h: SoakHost): TartVm[] {
  const r = spawnSync(h.config.host.tartPath, ["list", "--format", "json", "--source", "local"], { env: h.env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`soak: tart list failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as TartVm[];
}

export const ours = (name: string) => name.startsWith(`${PREFIX}-${HOST_ID}-`);

/** Runs a compiled command to its end, keeping its output. */
async function run(h: SoakHost, name: string, args: string[], out: Finished["output"]): Promise<number | null> {
  const child = spawn(join(BIN, name), args, { env: h.env, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  child.stdout.on("data", (d) => (text += d));
  child.stderr.on("data", (d) => (text += d));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  out.push({ file: `${name} ${args.join(" ")}`, text });
  return code;
}

const cleanupAll = async (h: SoakHost, out: Finished["output"]) => {
  for (const slot of SLOTS) await run(h, "cleanup", ["--slot", String(slot), "--config", h.configPath], out);
};

/** When the slots' ghosts can be retried: GitHub let go of them and the once-a-minute retry is due. */
function ghostsDueAt(h: SoakHost): number {
  const due = SLOTS.map((slot) => {
    try {
      const st = JSON.parse(readFileSync(join(h.stateDir, `slot-${slot}.json`), "utf8")) as { ghosts?: unknown[]; ghosts_checked_at?: string };
      return st.ghosts?.length ? (Date.parse(st.ghosts_checked_at ?? "") || 0) + GHOST_RETRY_MS + 1000 : 0;
    } catch {
      return 0;
    }
  });
  return Math.max(...due, Date.now() + TIMING.lostRunnerBusyMs + TIMING.sessionLeaseMs);
}

export async function finish(h: SoakHost, agents: Map<number, Agent>, say: (line: string) => void): Promise<Finished> {
  const output: Finished["output"] = [];
  say("soak: all jobs done; booting the agents out and cleaning each slot (install --remove) ...");
  await Promise.all([...agents.values()].map((a) => a.bootout()));
  await cleanupAll(h, output);
  const vmsLeft = tartList(h).map((v) => v.Name).filter(ours);
  const apiCalls = (await h.world.gh.state()).requests.byAccount[ORG] ?? {};

  const due = ghostsDueAt(h);
  say(`soak: next start of both slots${due > Date.now() + 10_000 ? ` in ${Math.round((due - Date.now()) / 1000)} s (ghosts are retried once a minute)` : ""} ...`);
  await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
  for (const slot of SLOTS) await h.world.gh.enqueueJob({ name: `next-start-${slot}`, labels: [PREFIX], script: "echo next start" });
  await Promise.all(SLOTS.map((slot) => run(h, "loop", ["--slot", String(slot), "--config", h.configPath], output)));
  await cleanupAll(h, output);
  return { vmsLeft, apiCalls, after: await h.world.gh.state(), listed: tartList(h), output };
}
