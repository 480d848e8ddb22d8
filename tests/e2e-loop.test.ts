// End to end: the compiled `loop` against the simulated world (fake GitHub,
// real registry, fake tart, SSH-served guests). Assertions are on the world
// afterwards: jobs, VMs, runners, logs, state files.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderAgents } from "../lib/launchd/render.ts";
import { loadConfig } from "../lib/config.ts";
import { startAgent } from "../sim/launchd.ts";
import { parseLogLines } from "../sim/logs.ts";
import { startWorld, type World } from "../sim/world.ts";
import { ensureBinaries, BIN, ROOT, events, loop, slotState, start, tartVms, until, worldEnv } from "./helpers/e2e.ts";

let world: World;
let n = 0;
/** A config of its own (state and logs) per test, on the shared world. */
function config(overrides: Record<string, unknown> = {}): { path: string; stateDir: string; logDir: string } {
  const name = `t${++n}`;
  const stateDir = join(world.dir, name, "state");
  const logDir = join(world.dir, name, "logs");
  const host = { state_dir: stateDir, log_dir: logDir, backoff_initial: "100ms", backoff_max: "400ms", ...((overrides.host as object) ?? {}) };
  const path = world.writeConfig({ ...overrides, host }, `${name}.yml`);
  return { path, stateDir, logDir };
}

const DIRTY_CHECK = 'test ! -e "$HOME/left-by-previous-job" || { echo "dirty VM"; exit 1; }; touch "$HOME/left-by-previous-job"';

beforeAll(async () => {
  ensureBinaries(["loop", "clone", "boot", "token", "ssh-run", "cleanup"]);
  world = await startWorld({ registry: "required", tart: { boot_ms: 150 }, github: { validate: true, sessionLeaseMs: 1500 } });
});

afterAll(async () => {
  await world?.stop();
});

async function settle(): Promise<void> {
  await world.gh.clearFaults();
  world.setTart({ boot_ms: 150, faults: [] });
}

describe("steady state", () => {
  test("several jobs through two launchd-driven slots: each once, each on a fresh VM, nothing left, 1 API call per cycle", async () => {
    const c = config();
    const cfg = loadConfig({ path: c.path });
    for (const dir of [c.logDir, c.stateDir]) mkdirSync(dir, { recursive: true });
    const jobs = await Promise.all([1, 2, 3, 4, 5].map((i) => world.gh.enqueueJob({ name: `e2e-${i}`, script: `${DIRTY_CHECK}; echo job ${i} ok` })));
    const agents = renderAgents({ binDir: BIN, configPath: c.path, slots: 2, logDir: c.logDir, stateDir: c.stateDir, jobTimeoutMs: cfg.runner.jobTimeoutMs, pull: false }).map((a) => {
      const path = join(world.dir, `t${n}-${a.fileName}`);
      writeFileSync(path, a.xml);
      return startAgent(path, { env: worldEnv(world) });
    });
    try {
      await until("all jobs done", async () => {
        const s = await world.gh.state();
        return jobs.every((j) => s.jobs.find((x) => x.id === j.id)?.status === "completed");
      }, 60_000, 100);
    } finally {
      await Promise.all(agents.map((a) => a.bootout()));
    }
    const s = await world.gh.state();
    const mine = s.jobs.filter((j) => jobs.some((x) => x.id === j.id));
    expect(mine.map((j) => [j.result, j.attempts])).toEqual(jobs.map(() => ["Succeeded", 1]));
    expect(new Set(mine.map((j) => j.runner_name)).size).toBe(jobs.length);
    expect(tartVms(world)).toEqual([]);
    expect(s.runners).toEqual([]);
    expect(s.violations).toEqual([]);

    const lines = readdirSync(c.logDir).flatMap((f) => parseLogLines(readFileSync(join(c.logDir, f), "utf8")));
    const cycles = events(lines, "cycle.start").length;
    // Cycles ended by the bootout: while the runner listened, or before it started.
    const idleStops = events(lines, "cycle.done").filter((l) => l.outcome === "stopped").length + events(lines, "cycle.stopped").length;
    const calls = s.requests.byEndpoint;
    expect(calls["POST /orgs/{org}/actions/runners/generate-jitconfig"]).toBe(cycles);
    // A completed job de-registers its own runner: only the idle runners stopped at bootout cost a DELETE.
    expect(calls["DELETE /orgs/{org}/actions/runners/{runner_id}"] ?? 0).toBe(idleStops);
    // The installation token is fetched once per slot process at most, then read from the disk cache.
    expect(calls["POST /app/installations/{installation_id}/access_tokens"]).toBeLessThanOrEqual(2);
    expect(s.requests.total).toBe(cycles + idleStops + calls["POST /app/installations/{installation_id}/access_tokens"]!);
    await world.gh.resetRequests();
  }, 90_000);
});

describe("crash recovery", () => {
  test("loop killed during boot: the next loop of the slot removes the VM and runner, then serves the job", async () => {
    await settle();
    world.setTart({ boot_ms: 5000 });
    const c = config();
    const first = start(world, "loop", ["--slot", "1", "--config", c.path]);
    const vm = await until("phase boot", () => {
      const st = slotState(c.stateDir);
      return st?.phase === "boot" && st.runner_id !== undefined && (st.vm as string);
    });
    await until("the VM to be running", () => tartVms(world).includes(vm));
    first.child.kill("SIGKILL");
    await first.done;
    expect(tartVms(world)).toContain(vm);
    expect((await world.gh.state()).runners.map((r) => r.name)).toContain(vm);

    world.setTart({ boot_ms: 150 });
    const job = await world.gh.enqueueJob({ name: "after-crash", script: "echo served" });
    const second = await loop(world, c.path);
    expect(second.code).toBe(0);
    expect(events(second.lines, "recover.start")[0]?.vm).toBe(vm);
    expect((await world.gh.job(job.id)).result).toBe("Succeeded");
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
  }, 60_000);

  test("loop killed during a job: the VM dies with the next loop's recovery, the job is re-queued and served", async () => {
    await settle();
    const c = config();
    const mark = join(world.dir, `mark-${n}`);
    const job = await world.gh.enqueueJob({ name: "long-build", script: `if [ -e ${mark} ]; then echo second try; else touch ${mark}; sleep 60; fi` });
    const first = start(world, "loop", ["--slot", "1", "--config", c.path]);
    await until("the job to start", async () => (await world.gh.job(job.id)).status === "in_progress");
    const vm = slotState(c.stateDir)?.vm as string;
    first.child.kill("SIGKILL");
    await first.done;

    const second = await loop(world, c.path);
    expect(second.code).toBe(0);
    expect(events(second.lines, "recover.start")[0]?.vm).toBe(vm);
    const done = await world.gh.job(job.id);
    expect(done.status).toBe("completed");
    expect(done.result).toBe("Succeeded");
    expect(done.attempts).toBe(2);
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
  }, 60_000);

  test("a second loop on a busy slot refuses with exit 75 and touches nothing", async () => {
    await settle();
    world.setTart({ boot_ms: 3000 });
    const c = config();
    const first = start(world, "loop", ["--slot", "1", "--config", c.path]);
    await until("phase boot", () => slotState(c.stateDir)?.phase === "boot");
    const second = await loop(world, c.path);
    expect(second.code).toBe(75);
    expect(second.stderr).toContain("slot 1 is already served by another loop");
    expect(slotState(c.stateDir)?.phase).toBe("boot");
    first.child.kill("SIGTERM"); // idle: stops at once, cleans up
    expect((await first.done).code).toBe(0);
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
  }, 60_000);
});

describe("signals", () => {
  test("SIGTERM during a job lets the job finish, then cleans up and exits 0", async () => {
    await settle();
    const c = config();
    const job = await world.gh.enqueueJob({ name: "drain-me", script: "sleep 2; echo finished" });
    const run = start(world, "loop", ["--slot", "1", "--config", c.path]);
    let log = "";
    run.child.stderr!.on("data", (d) => (log += d));
    await until("the runner to report the job", () => log.includes('"runner.job-started"'));
    run.child.kill("SIGTERM");
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(events(r.lines, "run.draining").length).toBe(1);
    const done = await world.gh.job(job.id);
    expect([done.result, done.attempts]).toEqual(["Succeeded", 1]);
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
  }, 60_000);

  test("a second signal cuts the job short; the slot is still left clean and the job is served again", async () => {
    await settle();
    const c = config();
    const mark = join(world.dir, `cut-mark-${n}`);
    const job = await world.gh.enqueueJob({ name: "cut-me", script: `if [ -e ${mark} ]; then echo again; else touch ${mark}; sleep 30; fi` });
    const run = start(world, "loop", ["--slot", "1", "--config", c.path]);
    let log = "";
    run.child.stderr!.on("data", (d) => (log += d));
    await until("the runner to report the job", () => log.includes('"runner.job-started"'));
    run.child.kill("SIGTERM");
    await until("the drain to begin", () => log.includes('"run.draining"'));
    run.child.kill("SIGINT");
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(events(r.lines, "run.done")[0]?.outcome).toBe("stopped");
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
    // GitHub re-queues the cut job; the next cycle serves it.
    expect((await loop(world, c.path)).code).toBe(0);
    expect((await world.gh.job(job.id)).result).toBe("Succeeded");
  }, 60_000);
});

describe("idle runner retired by GitHub", () => {
  test("the runner's 'no longer exists' ends the cycle cleanly: exit 0, no backoff, nothing left", async () => {
    await settle();
    const c = config();
    const run = start(world, "loop", ["--slot", "1", "--config", c.path]);
    let log = "";
    run.child.stderr!.on("data", (d) => (log += d));
    await until("the runner to listen", () => log.includes('"run.ready"'));
    // GitHub removes idle JIT runners after a few minutes (contracts/github.md §5 pitfall 7).
    const id = slotState(c.stateDir)!.runner_id as number;
    const res = await fetch(`${world.github.url}/orgs/acme/actions/runners/${id}`, { method: "DELETE", headers: { authorization: `token ${world.github.pat}` } });
    expect(res.status).toBe(204);
    const r = await run.done;
    expect(r.code).toBe(0);
    expect(events(r.lines, "run.done")[0]?.outcome).toBe("no-job");
    expect(events(r.lines, "cleanup.runner_removed")).toEqual([]); // already gone: no second DELETE
    const st = slotState(c.stateDir)!;
    expect([st.phase, st.failures, st.backoff_until]).toEqual(["done", 0, undefined]);
    expect(tartVms(world)).toEqual([]);
  }, 60_000);
});

describe("faults", () => {
  test("a VM that fails to start: detected while booting, no waiting for the boot timeout, cleaned up", async () => {
    await settle();
    world.setTart({ faults: [{ kind: "start_failure", count: 1 }] });
    const c = config({ vm: { boot_timeout: "60s" } });
    const started = Date.now();
    const r = await loop(world, c.path);
    expect(r.code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(events(r.lines, "cycle.failed")[0]?.msg).toContain("stopped while booting");
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
  }, 60_000);

  test("GitHub 5xx and a secondary rate limit during token: retried, the job still runs once", async () => {
    await settle();
    const c = config();
    await world.gh.fault({ method: "POST", path: "/orgs/{org}/actions/runners/generate-jitconfig", status: 502, count: 2 });
    await world.gh.fault({ method: "POST", path: "/orgs/{org}/actions/runners/generate-jitconfig", rateLimited: "secondary", retryAfter: 1, count: 1 });
    const job = await world.gh.enqueueJob({ name: "flaky-github", script: "echo ok" });
    const r = await loop(world, c.path);
    expect(r.code).toBe(0);
    const retries = events(r.lines, "token.retry");
    expect(retries.map((l) => l.status)).toEqual([502, 502, 403]);
    expect(retries[2]!.msg).toContain("rate limited");
    expect((await world.gh.job(job.id)).result).toBe("Succeeded");
    expect((await world.gh.state()).runners).toEqual([]);
  }, 60_000);

  test("clone fails (disk full): logged, runner removed, failure and backoff persisted, exit 1", async () => {
    await settle();
    world.setTart({ faults: [{ kind: "clone_disk_full", count: 1 }] });
    const c = config();
    const r = await loop(world, c.path);
    expect(r.code).toBe(1);
    expect(events(r.lines, "cycle.failed")[0]?.msg).toContain("No space left on device");
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
    const st = slotState(c.stateDir)!;
    expect(st.failures).toBe(1);
    expect(st.phase).toBe("failed");
    expect(typeof st.backoff_until).toBe("string");
    expect(events(r.lines, "backoff.start")[0]?.wait_ms).toBe(100);
  }, 60_000);

  test("a VM that never gets an IP: boot times out, cleaned up", async () => {
    await settle();
    world.setTart({ faults: [{ kind: "no_ip", count: 1 }] });
    const c = config({ vm: { boot_timeout: "3s" } });
    const r = await loop(world, c.path);
    expect(r.code).not.toBe(0);
    expect(events(r.lines, "cycle.failed")[0]?.msg).toMatch(/got no IP within vm.boot_timeout/);
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
  }, 60_000);

  test("a VM that crashes mid-job: SSH lost, cleaned up; the re-queued job is served by the next cycle", async () => {
    await settle();
    const mark = join(world.dir, `crash-mark-${n}`);
    world.setTart({ faults: [{ kind: "crash", count: 1, after_ms: 1500 }] });
    const c = config();
    const job = await world.gh.enqueueJob({ name: "crashy", script: `if [ -e ${mark} ]; then echo fine; else touch ${mark}; sleep 30; fi` });
    const r = await loop(world, c.path);
    expect(r.code).toBe(1);
    expect(events(r.lines, "run.done")[0]?.outcome).toBe("ssh-lost");
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
    const again = await loop(world, c.path);
    expect(again.code).toBe(0);
    expect((await world.gh.job(job.id)).result).toBe("Succeeded");
  }, 60_000);

  test("a guest whose host key does not match: refused, reported, cleaned", async () => {
    await settle();
    const other = join(world.dir, `other-known-hosts-${n}`);
    const key = readFileSync(world.knownHostsPath, "utf8").replace(/AAAA[0-9A-Za-z+/=]+/, "AAAAC3NzaC1lZDI1NTE5AAAAIOl1lzjYD9s7cD2mU8wVv8r0b6mW8tN2rXkq2M8bDd0Z");
    writeFileSync(other, key);
    const c = config({ vm: { ssh: { known_hosts_path: other } } });
    const r = await loop(world, c.path);
    expect(r.code).toBe(1);
    const done = events(r.lines, "run.done")[0];
    expect(done?.outcome).toBe("host-key");
    expect(done?.msg).toContain("does not match");
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
  }, 60_000);
});

describe("bad input", () => {
  test("a bad config: exit 78, the key path named, nothing created", async () => {
    const c = config({ host: { slots: 3 } });
    const r = await loop(world, c.path);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("host.slots");
    expect(() => readdirSync(c.stateDir)).toThrow();
    expect(tartVms(world)).toEqual([]);
  });

  test("a missing key file: exit 78, the file named", async () => {
    const c = config({ github: { app: { private_key_path: join(world.dir, "nope.pem") } } });
    const r = await loop(world, c.path);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("github.app.private_key_path");
    expect(r.stderr).toContain("nope.pem");
  });

  test("--help documents exit codes; an unknown flag is exit 64", async () => {
    const help = await start(world, "loop", ["--help"]).done;
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:[\s\S]*75 /);
    const bad = await start(world, "loop", ["--slot", "1", "--frobnicate"]).done;
    expect(bad.code).toBe(64);
    expect(bad.stderr).toContain("--frobnicate");
  });
});

describe("secrets", () => {
  test("no installation token, JIT config, key or password in argv, logs or state files", async () => {
    await settle();
    const c = config();
    const job = await world.gh.enqueueJob({ name: "secretive", script: "sleep 2; echo done" });
    const run = start(world, "loop", ["--slot", "1", "--config", c.path]);
    await until("the job to start", async () => (await world.gh.job(job.id)).status === "in_progress");

    const vm = slotState(c.stateDir)?.vm as string;
    const guestRoot = join(world.tartHome, "vms", vm, "disk.img", "Users", "admin", "actions-runner");
    const runnerSecret = (JSON.parse(readFileSync(join(guestRoot, ".credentials"), "utf8")) as { data: { token: string } }).data.token;
    const cache = readFileSync(join(c.stateDir, "github-token-cache.json"), "utf8");
    const installationToken = /ghs_[A-Za-z0-9_]+/.exec(cache)![0];
    const pemBody = readFileSync(world.appKeyPath, "utf8").split("\n")[1]!;
    const secrets = [runnerSecret, installationToken, pemBody, world.registry!.password];

    const argv = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ");
      } catch {
        return "";
      }
    });
    expect(argv.some((a) => a.includes("ssh ") && a.includes("actions-runner"))).toBe(true); // the job's ssh is in the table
    for (const s of secrets) expect(argv.filter((a) => a.includes(s))).toEqual([]);
    expect(argv.filter((a) => /[A-Za-z0-9+/=]{200,}/.test(a))).toEqual([]); // no JIT config

    const r = await run.done;
    expect(r.code).toBe(0);
    const files = [
      ...readdirSync(c.logDir).map((f) => join(c.logDir, f)),
      join(c.stateDir, "slot-1.json"),
    ];
    const written = files.map((f) => readFileSync(f, "utf8")).join("\n") + r.stderr + r.stdout;
    for (const s of secrets) expect(written.includes(s)).toBe(false);
    expect(written).not.toMatch(/[A-Za-z0-9+/=]{200,}/);
  }, 60_000);
});

describe("from source", () => {
  test("./scripts/loop.ts runs one cycle in the foreground with readable (text) output on a terminal", async () => {
    await settle();
    const c = config();
    const job = await world.gh.enqueueJob({ name: "from-source", script: "echo hello from the guest" });
    const env = { ...worldEnv(world), PATH: `${join(ROOT, "node_modules", ".bin")}:${world.env.PATH}` };
    // `script` gives the process a terminal, as an operator's shell would.
    const child = spawn("script", ["-qec", `./scripts/loop.ts --slot 1 --config ${c.path}`, "/dev/null"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    const code = await new Promise((r) => child.on("close", r));
    expect(code).toBe(0);
    expect((await world.gh.job(job.id)).result).toBe("Succeeded");
    const lines = out.split(/\r?\n/).filter(Boolean);
    expect(lines.some((l) => l.startsWith("{"))).toBe(false);
    expect(out).toMatch(/INFO\s+cycle\.done slot=1 vm=sim-/);
    expect(out).toContain("hello from the guest");
    expect(tartVms(world)).toEqual([]);
  }, 60_000);
});

describe("step binaries", () => {
  test("clone, boot, token | ssh-run, cleanup chained by hand serve one job (the README's replay)", async () => {
    await settle();
    const c = config();
    const job = await world.gh.enqueueJob({ name: "by-hand", script: "echo step by step" });
    const args = ["--slot", "2", "--config", c.path];
    const cloned = await start(world, "clone", args).done;
    expect(cloned.code).toBe(0);
    const vm = cloned.stdout.trim();
    expect(tartVms(world)).toContain(vm);
    const booted = await start(world, "boot", [...args, "--vm", vm]).done;
    expect(booted.code).toBe(0);
    const ip = booted.stdout.trim();
    expect(ip).toMatch(/^127\.\d+\.\d+\.\d+$/);

    const jitFile = join(world.dir, `jit-${n}.json`);
    const tokened = await start(world, "token", [...args, "--output", jitFile]).done;
    expect(tokened.code).toBe(0);
    const jit = JSON.parse(readFileSync(jitFile, "utf8")) as { runner_name: string; encoded_jit_config: string };
    expect(tokened.stderr).not.toContain(jit.encoded_jit_config);
    const run = start(world, "ssh-run", [...args, "--ip", ip]);
    run.child.stdin?.end(readFileSync(jitFile));
    const ran = await run.done;
    expect(ran.code).toBe(0);
    expect((await world.gh.job(job.id)).result).toBe("Succeeded");

    const cleaned = await start(world, "cleanup", [...args, "--vm", vm]).done;
    expect(cleaned.code).toBe(0);
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
  }, 60_000);

  test("cleanup refuses a VM that is not this slot's, and exits 64 naming it", async () => {
    const c = config();
    const r = await start(world, "cleanup", ["--slot", "1", "--config", c.path, "--vm", "someone-elses-vm"]).done;
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("refusing to remove VM someone-elses-vm");
  });
});

describe("GitHub credentials", () => {
  test("without installation_id the installation is looked up once, then cached on disk across restarts", async () => {
    await settle();
    await world.gh.resetRequests();
    const c = config({ github: { app: { installation_id: null } } });
    for (const i of [1, 2]) {
      const job = await world.gh.enqueueJob({ name: `lookup-${i}`, script: "true" });
      expect((await loop(world, c.path)).code).toBe(0);
      expect((await world.gh.job(job.id)).result).toBe("Succeeded");
    }
    const calls = (await world.gh.state()).requests.byEndpoint;
    expect(calls["GET /orgs/{org}/installation"]).toBe(1);
    expect(calls["POST /app/installations/{installation_id}/access_tokens"]).toBe(1);
    expect(calls["POST /orgs/{org}/actions/runners/generate-jitconfig"]).toBe(2);
  }, 60_000);

  test("a PAT instead of an app serves jobs too", async () => {
    await settle();
    const c = config({ github: { app: null, token_path: world.patPath } });
    const job = await world.gh.enqueueJob({ name: "with-pat", script: "true" });
    expect((await loop(world, c.path)).code).toBe(0);
    expect((await world.gh.job(job.id)).result).toBe("Succeeded");
  }, 60_000);

  test("an app without the runner permission: exit 78 and a message that names the permission", async () => {
    await settle();
    const c = config();
    // GitHub's answer to an installation without the permission (sim/github's own
    // permission checks are covered by its contract tests).
    await world.gh.fault({ method: "POST", path: "/orgs/{org}/actions/runners/generate-jitconfig", status: 403, body: { message: "Resource not accessible by integration", documentation_url: "https://docs.github.com/rest", status: "403" }, count: 1 });
    const r = await loop(world, c.path);
    expect(r.code).toBe(78);
    expect(events(r.lines, "cycle.failed")[0]?.msg).toContain('lacks the "organization_self_hosted_runners" (write) permission');
    expect(tartVms(world)).toEqual([]);
    expect((await world.gh.state()).runners).toEqual([]);
  }, 60_000);
});
