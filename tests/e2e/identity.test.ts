// Who a host is and what it may see: a host id from the machine, two hosts
// that share one id in an org without harm, and the registry password only
// in the environment of the tart calls that talk to the registry.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { parse, stringify } from "yaml";
import { loadConfig } from "../../lib/config/index.ts";
import { createGitHubClient } from "../../lib/github/client.ts";
import { generateJitConfig } from "../../lib/github/runners.ts";
import { createLogger } from "../../lib/core/log.ts";
import { machineId } from "../../lib/config/names.ts";
import { renderAgents } from "../../lib/host/launchd/render.ts";
import { startAgent, type Agent } from "../../sim/launchd.ts";
import type { World } from "../../sim/world.ts";
import { BIN } from "../helpers/e2e.ts";
import { count, enqueue, events, exitOf, fileWorld, gate, github, job, logLines, logText, loopBinary, nothingLeft, slots, slotState, start, until, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

/** The environment of the running `tart run` of a VM, read from /proc (what `ps eww` shows on a Mac). */
function runEnvironment(vm: string): Record<string, string> | undefined {
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (!(argv.includes("run") && argv.includes(vm))) continue;
      const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
      return Object.fromEntries(env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return undefined;
}

describe("registry credentials", () => {
  test.concurrent("in the environment of clone only: the `tart run` of a job has no registry password, not even one the loop inherited", async () => {
    const s = slots(world);
    const password = world.registry!.password;
    // The loop's own environment carries a wrong password: clone must use image.password_path's,
    // and `tart run` must carry neither.
    const inherited = "inherited-wrong-password";
    const hold = gate(s, "holds-the-vm");
    const { id } = await enqueue(s, "holds-the-vm", hold.script("echo ok"));
    const run = loopBinary(s, 1, { TART_REGISTRY_USERNAME: world.registry!.username, TART_REGISTRY_PASSWORD: inherited });
    try {
      const vm = await until("the job running", async () => {
        const j = (await github(s)).jobs.find((x) => x.id === id);
        return j?.status === "in_progress" && (slotState(s)?.vm as string | undefined);
      }, 60_000, 100);
      const env = await until("the VM's tart run process", () => runEnvironment(vm), 10_000, 50);
      expect(env.TART_HOME).toBe(s.host.tartHome); // the right process
      expect(Object.keys(env).filter((k) => k.startsWith("TART_REGISTRY_"))).toEqual([]);
      expect(Object.values(env).join("\n")).not.toContain(password);
      expect(Object.values(env).join("\n")).not.toContain(inherited);
      hold.open();
      expect((await run.done).code).toBe(0);
      const done = (await github(s)).jobs.find((x) => x.id === id);
      expect(done?.result).toBe("Succeeded");
      // No host.id configured: the id comes from the machine (here /etc/machine-id), pinned on this first start.
      const host = machineId()!.id;
      expect(readFileSync(join(s.stateDir, "host-id"), "utf8")).toBe(`${host}\n`);
      expect(done?.runner_name).toStartWith(`${s.prefix}-${host}-1-`);
      expect(run.lines().find((l) => l.event === "host.id_pinned")?.msg).toContain(`"${host}" (from /etc/machine-id)`);
    } catch (err) {
      hold.open();
      run.child.kill("SIGTERM");
      console.error(logText(run.lines()));
      throw err;
    }
    // The VM the cycle started ahead for the next one.
    expect((await start(world, "cleanup", ["--slot", "1", "--config", s.path], s.host.env).done).code).toBe(0);
    await nothingLeft(s);
  }, 90_000);
});

/** A second Mac in the same org with the same config (and so the same host.id): its own TART_HOME, state and logs. */
function twin(a: Slots): Slots {
  const name = `${a.org}-twin`;
  const host = world.addHost(name, { boot_ms: 150 });
  const stateDir = join(world.dir, name, "state");
  const logDir = join(world.dir, name, "logs");
  for (const dir of [logDir, stateDir]) mkdirSync(dir, { recursive: true });
  const yaml = parse(readFileSync(a.path, "utf8")) as { host: Record<string, unknown> };
  yaml.host = { ...yaml.host, state_dir: stateDir, log_dir: logDir, dhcp_leases_path: host.leasesPath };
  const path = join(world.dir, `${name}.yml`);
  writeFileSync(path, stringify(yaml));
  return { ...a, host, env: { ...a.env, ...host.env }, path, stateDir, logDir, config: loadConfig({ path }) };
}

/** Slot 1 of a host as launchd runs it: the loop again after every cycle. */
function agent(s: Slots): Agent {
  const [slot] = renderAgents({ binDir: BIN, configPath: s.path, slots: 1, logDir: s.logDir, stateDir: s.stateDir, jobTimeoutMs: s.config.runner.jobTimeoutMs, pull: false });
  const path = join(s.logDir, "..", slot!.fileName);
  writeFileSync(path, slot!.xml);
  return startAgent(path, { env: s.env });
}

describe("two hosts with one host id", () => {
  test.concurrent("serve one org at the same time: neither deletes the other's runners, no job is reported lost, host.id_conflict and doctor FAIL say why", async () => {
    // Two Macs imaged alike: the same hostname, pinned as the same host id.
    const a = slots(world, { host: { id: "admins-mac-mini", slots: 1 } }, { boot_ms: 150 });
    const b = twin(a);
    const online = async (s: Slots) => {
      const mine = slotState(s)?.runner_name;
      return (await github(s)).runners.find((r) => r.name === mine && r.status === "online");
    };
    const hold = gate(a, "on-host-b");
    const agents = [agent(b)];
    try {
      await until("host B's runner online", () => online(b), 60_000, 100);
      // Host B runs a job while host A starts (held until A's runner is online): the case where A used to report B's job lost.
      const held = await enqueue(a, "on-host-b", hold.script("echo ok"));
      const busy = await until("host B's job running", async () => (await github(a)).jobs.find((j) => j.id === held.id && j.status === "in_progress"), 30_000, 100);
      expect(busy.runner_name).toBe(slotState(b)?.runner_name as string);
      // doctor on host A: a runner named like A's is online, and neither A's state nor A's tart knows it.
      const doctor = await start(world, "doctor", ["--config", a.path, "--json"], a.host.env).done;
      if (!doctor.stdout.trim()) throw new Error(`doctor --json printed nothing (exit ${doctor.code}); its stderr:\n${doctor.stderr}`);
      const check = (JSON.parse(doctor.stdout) as { results: { check: string; status: string; found: string; fix: string }[] }).results.find((r) => r.check === "host-id-unique");
      expect(check?.status).toBe("FAIL");
      expect(check?.found).toContain(busy.runner_name!);
      expect(check?.fix).toContain("unique host.id");

      // Host A's first start sweeps its slot's runners on GitHub while B's runs the job.
      agents.push(agent(a));
      await until("host A's runner online", () => online(a), 60_000, 100);
      expect((await github(a)).jobs.find((j) => j.id === held.id)?.status).toBe("in_progress");
      hold.open();
      // Then one job each: both listening at once.
      await until("host B's job done, both hosts listening", async () => (await github(a)).jobs.find((j) => j.id === held.id)?.status === "completed" && (await online(a)) && (await online(b)), 60_000, 100);
      const jobs = [held];
      const queued = await Promise.all([1, 2].map((i) => enqueue(a, `both-${i}`, "sleep 2; echo ok")));
      jobs.push(...queued);
      await until("every job done", async () => (await github(a)).jobs.filter((j) => jobs.some((q) => q.id === j.id)).every((j) => j.status === "completed"), 60_000, 100);
      expect((await github(a)).jobs.map((j) => j.result)).toEqual(jobs.map(() => "Succeeded"));
    } catch (err) {
      hold.open();
      console.error(`host A:\n${logText(logLines(a))}\nhost B:\n${logText(logLines(b))}`);
      throw err;
    } finally {
      await Promise.all(agents.map((x) => x.bootout()));
    }
    const [linesA, linesB] = [logLines(a), logLines(b)];
    // Both served: B the first job and one of the pair, A the other.
    // A host's runners: each cycle's first, and those that replaced a runner GitHub retired while idle.
    const ran = (lines: typeof linesA) => new Set([...events(lines, "cycle.start"), ...events(lines, "runner.replaced")].map((l) => l.runner));
    const servedBy = (await github(a)).jobs.map((j) => (ran(linesA).has(j.runner_name) ? "A" : ran(linesB).has(j.runner_name) ? "B" : "?"));
    expect(servedBy.sort()).toEqual(["A", "B", "B"]);
    for (const lines of [linesA, linesB]) {
      expect(events(lines, "job.lost")).toEqual([]);
      expect(events(lines, "sweep.runner")).toEqual([]);
    }
    // Every runner DELETE was a host removing its own cycle's runner (by the id in its own state): after its job, at its
    // next launch, or, when the bootout found it listening, on the drain (run.stopping).
    const own = [...linesA, ...linesB].filter((l) => ["cleanup.runner_removed", "recover.runner_removed", "run.stopping"].includes(l.event)).length;
    expect(count((await github(a)).calls, "DELETE")).toBe(own);
    const conflict = events(linesA, "host.id_conflict");
    expect(conflict.length).toBe(1);
    expect(conflict[0]!.level).toBe("error");
    expect(conflict[0]!.msg).toContain("give each host a unique host.id");
    for (const s of [a, b]) expect((await start(world, "cleanup", ["--slot", "1", "--config", s.path], s.host.env).done).code).toBe(0);
    await nothingLeft(a);
    await nothingLeft(b);
  }, 180_000);
});

describe("an offline runner named like the slot's that neither state nor tart knows", () => {
  test.concurrent("left alone for a day after another host with this host id was seen; swept otherwise (what a lost state file leaves)", async () => {
    const s = slots(world, { host: { id: "shared-id", slots: 1 } }, { boot_ms: 150 });
    // Registered and never connected: offline, as a crash of ours or another host's runner before it connects.
    const name = `${s.prefix}-shared-id-1-abcdef`;
    const gh = createGitHubClient(s.config.github, { stateDir: join(s.stateDir, "..", "other-host"), log: createLogger({ stream: new PassThrough() }) });
    await generateJitConfig(gh, { name, group: "Default", labels: ["self-hosted"], workFolder: "_work" });
    /** One cycle with a GitHub sweep due (swept two hours ago), a second owner last seen `seenAgoMs` ago. */
    const cycle = async (seenAgoMs: number) => {
      const file = join(s.stateDir, "slot-1.json");
      const state = slotState(s) ?? { version: 1, slot: 1 };
      const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
      writeFileSync(file, JSON.stringify({ ...state, swept_at: ago(2 * 3600_000), conflict_seen_at: ago(seenAgoMs) }));
      const queued = await enqueue(s, `job-${seenAgoMs}`, "sleep 1; echo ok");
      const lines = await exitOf(loopBinary(s), 0);
      expect((await job(s, queued.id)).result).toBe("Succeeded");
      return lines;
    };
    const registered = async () => (await github(s)).runners.some((r) => r.name === name);

    const wary = await cycle(3600_000);
    expect(events(wary, "sweep.runner_unproven").map((l) => l.runner)).toEqual([name]);
    expect(events(wary, "sweep.runner")).toEqual([]);
    expect(await registered()).toBe(true);

    const sure = await cycle(2 * 24 * 3600_000);
    expect(events(sure, "sweep.runner").map((l) => l.runner)).toEqual([name]);
    expect(await registered()).toBe(false);
    expect(events([...wary, ...sure], "host.id_conflict")).toEqual([]);

    expect((await start(world, "cleanup", ["--slot", "1", "--config", s.path], s.host.env).done).code).toBe(0);
    await nothingLeft(s);
  }, 90_000);
});
