// `selftest`, the compiled binary, against the simulated world: it loads a
// one-shot agent into the simulated launchd (sim/bin/launchctl), the agent
// runs the host checks, a VM cycle and the snapshot path, the command relays
// the table and exits with the agent's code, and the JSON report is written.
// Each FAIL comes from a fault of the world (no lease, a wrong host key, an
// old runner, a restore that boots cold, a clock that stays off), and
// nothing the selftest made is left, also when it is stopped.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SelftestReport } from "../../lib/host/selftest.ts";
import { isRunning } from "../../sim/tart/running.ts";
import type { World } from "../../sim/world.ts";
import { ensureBinaries } from "../helpers/e2e.ts";
import { fileWorld, slots, start, until, vms, type Slots } from "./harness.ts";

const DAY = 86_400_000;
const daysAgo = (d: number) => new Date(Date.now() - d * DAY).toISOString();
/** actions/runner's releases as GitHub lists them; the sim's runner is 2.336.0. */
const CURRENT = [{ tag_name: "v2.336.0", published_at: daysAgo(3), draft: false, prerelease: false }];
const SUPERSEDED = [
  { tag_name: "v2.338.0", published_at: daysAgo(5), draft: false, prerelease: false },
  { tag_name: "v2.337.0", published_at: daysAgo(40), draft: false, prerelease: false },
  ...CURRENT,
];

let world: World;
let releases: Record<string, typeof CURRENT> = {};
let server: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  ensureBinaries(["selftest", "cleanup"]);
  // A stopped VM's place frees in 0.1 s, not the fast profile's 1 s: the snapshot path waits for places more than once.
  world = await fileWorld({ tart: { boot_ms: 100, ssh_ms: 50, suspend_ms: 50, restore_ms: 100, place_release_ms: 100 } });
  // GitHub's releases, per test (by the org in the path), so tests share nothing.
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const [, id, ...rest] = new URL(req.url).pathname.split("/");
      const list = releases[id!] ?? CURRENT;
      if (rest.join("/") === "releases/latest") return Response.json(list[0]);
      if (rest.join("/") === "releases") return Response.json(list);
      return new Response('{"message":"Not Found"}', { status: 404 });
    },
  });
}, 60_000);

afterAll(async () => {
  server?.stop(true);
  await world?.stop();
});

interface Selftest {
  s: Slots;
  code: number | null;
  stdout: string;
  report: SelftestReport;
  by(check: string): SelftestReport["checks"][number];
}

let hosts = 0;
type Host = Slots & { launchd: string; reportPath: string };

async function host(o: { overrides?: Record<string, unknown>; releases?: typeof CURRENT; localNetwork?: "granted" | "withheld" } = {}): Promise<Host> {
  const id = `h${++hosts}`;
  releases[id] = o.releases ?? CURRENT;
  const s = slots(world, {
    ...o.overrides,
    image: { runner_releases_url: `http://127.0.0.1:${server.port}/${id}/releases` },
    // Generous: eight selftests share this machine's cores.
    vm: { boot_timeout: "40s", ...(o.overrides?.vm as object) },
  });
  // Someone clicked Allow for macos-runner's Local Network prompt (unless the test says otherwise).
  s.host.setTart({ local_network: o.localNetwork ?? "granted" });
  // A host that has served before has the image in tart's cache.
  // Not spawnSync: the other tests' selftests and waits go on meanwhile.
  const pull = Bun.spawn([s.config.host.tartPath, "pull", world.imageRef, "--insecure"], { env: s.env, stdout: "ignore", stderr: "pipe" });
  if ((await pull.exited) !== 0) throw new Error(`tart pull failed: ${await new Response(pull.stderr).text()}`);
  const launchd = join(world.dir, s.org, "launchd");
  mkdirSync(launchd, { recursive: true });
  // The GUI session's environment: this host's TART_HOME and sim settings (on a Mac: ~/.tart).
  writeFileSync(join(launchd, "session.json"), JSON.stringify({ HOME: s.env.HOME, TART_HOME: s.env.TART_HOME, SIM_TART_CONFIG: s.env.SIM_TART_CONFIG, PATH: "/usr/bin:/bin" }));
  return { ...s, launchd, reportPath: join(s.logDir, "report.json") };
}

async function selftest(h: Host, args: string[] = []): Promise<Selftest> {
  const r = await start(world, "selftest", ["--config", h.path, "--report", h.reportPath, ...args], { ...h.host.env, SIM_LAUNCHD: h.launchd }).done;
  if (!existsSync(h.reportPath)) throw new Error(`no report (exit ${r.code}); stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  const report = JSON.parse(readFileSync(h.reportPath, "utf8")) as SelftestReport;
  const by = (check: string) => {
    const c = report.checks.find((x) => x.check === check);
    if (!c) throw new Error(`no check ${check} in ${report.checks.map((x) => x.check).join(", ")}`);
    return c;
  };
  return { s: h, code: r.code, stdout: r.stdout, report, by };
}

/** Whether one of the host's VMs runs: tart's own record of a live `tart run`, read here (no process to start every poll). */
function aVmRuns(h: Host): boolean {
  const dir = join(h.host.tartHome, "vms");
  return existsSync(dir) && readdirSync(dir).some((n) => n.startsWith(`${h.prefix}-`) && isRunning(join(dir, n)));
}

/** Nothing of the selftest is left: no VM of the test's host, no agent loaded, no plist. */
function nothingLeft(h: Host): void {
  expect(vms(h)).toEqual([]);
  expect(readdirSync(join(h.launchd, "loaded"))).toEqual([]);
  expect(existsSync(join(h.stateDir, "selftest", "dev.macos-runner.selftest.plist"))).toBe(false);
}

const statuses = (t: Selftest, status: string) => t.report.checks.filter((c) => c.status === status).map((c) => c.check);

// The longest tests first: they run beside the others, not after them.
/** Starts a selftest whose VM boots slowly, and SIGKILLs its agent (not the command) once that VM runs. */
async function killedMidCycle(h: Host) {
  h.host.setTart({ boot_ms: 30_000 });
  const run = start(world, "selftest", ["--config", h.path, "--report", h.reportPath], { ...h.host.env, SIM_LAUNCHD: h.launchd });
  await until("its VM to run", () => aVmRuns(h), 30_000);
  const job = JSON.parse(readFileSync(join(h.launchd, "status", "dev.macos-runner.selftest.json"), "utf8")) as { pid: number };
  process.kill(job.pid, "SIGKILL");
  const r = await run.done;
  expect(r.code).toBe(1);
  expect(r.stdout).toContain("selftest: its agent ended without a result (exit 137");
  // The VM it left carries slot 1's name: the slot's own sweep takes it.
  expect(vms(h).map((v) => v.name)).toEqual([expect.stringMatching(new RegExp(`^${h.prefix}-[a-z0-9-]+-1-[0-9a-f]{6}$`))]);
  h.host.setTart({ boot_ms: undefined });
}

test.concurrent("its agent killed (SIGKILL) mid-cycle: the next selftest removes the VM it left, then runs", async () => {
  const h = await host();
  await killedMidCycle(h);
  const left = vms(h)[0]!.name;
  const t = await selftest(h);
  expect(t.code).toBe(0);
  expect(t.by("clone").found).not.toContain(left);
  nothingLeft(h);
}, 60_000);

test.concurrent("its agent killed (SIGKILL) mid-cycle: the command says so and exits 1; cleanup --sweep removes the VM it left", async () => {
  const h = await host();
  await killedMidCycle(h);
  const c = await start(world, "cleanup", ["--slot", "1", "--sweep", "--config", h.path], h.host.env).done;
  expect(c.code).toBe(0);
  nothingLeft(h);
}, 60_000);

test.concurrent("a good host: run from a one-shot agent, every check passes (macOS-only ones SKIP), the table has times, the report has versions and timings", async () => {
  const h = await host();
  const t = await selftest(h, ["--snapshot"]);
  expect(statuses(t, "FAIL")).toEqual([]);
  expect(statuses(t, "WARN")).toEqual([]);
  expect(statuses(t, "SKIP").sort()).toEqual(["dhcp-lease-time", "dhcp-leases", "gui-session", "signature", "snapshot-after-update"]);
  expect(t.code).toBe(0);
  // It ran where the slots run: launchd (the simulated one) started it.
  expect(t.by("launchd-agent").status).toBe("PASS");
  // Its VMs carry slot 1's (and 2's) names, so a slot's sweep would remove what a killed selftest leaves.
  expect(t.by("clone").found).toMatch(new RegExp(`into ${h.prefix}-[a-z0-9-]+-1-[0-9a-f]{6}$`));
  // The table, relayed by the command: one row per check, steps with their time.
  for (const c of t.report.checks) expect(t.stdout).toContain(`${c.status.padEnd(4)}  ${c.check.padEnd(22)}`);
  expect(t.stdout).toMatch(/^PASS {2}clone +\d+(\.\d)? m?s {2}cloned /m);
  expect(t.stdout).toMatch(/^PASS {2}snapshot-restore +\d+(\.\d)? m?s {2}.* restored at /m);
  expect(t.stdout).toContain(`attach ${h.reportPath} to a GitHub issue`);
  const tart = spawnSync(h.config.host.tartPath, ["--version"], { encoding: "utf8" }).stdout.trim();
  expect(t.report.host).toMatchObject({ tart, runner: "2.336.0", slots: 2, transport: "exec" });
  expect(t.report.host.model).toContain("not a Mac");
  expect(Object.keys(t.report.timings_ms).sort()).toEqual(expect.arrayContaining(["boot_to_lease", "clock_sync", "clone", "clone_golden", "lease_to_ready", "restore_to_ready", "runner_start", "side_by_side_restore", "suspend", "teardown"]));
  // The same timings under the sim's profile keys, for the bench.
  expect(t.report.sim_profile).toMatchObject({ clone_ms: t.report.timings_ms.clone, boot_ms: t.report.timings_ms.boot_to_lease, restore_ms: t.report.timings_ms.restore_to_ready });
  expect(t.by("snapshot-side-by-side").found).toMatch(/slot 1's restored at (\S+) .*slot 2's restored at (?!\1)/);
  expect(t.by("snapshot-clock").found).toMatch(/^guest clock .* after the restore; sudo sntp -sS time\.apple\.com took \d+ ms; then (in step|[12] s (behind|ahead))$/);
  // Nothing secret: the registry password is in the sim's environment, never in the report.
  expect(readFileSync(h.reportPath, "utf8")).not.toContain(world.registry!.password);
  nothingLeft(h);
}, 60_000);

test.concurrent("fault: a VM that never gets a lease", async () => {
  // The lease never comes: the whole boot_timeout is waited out.
  const h = await host({ overrides: { vm: { boot_timeout: "2s" } } });
  h.host.setTart({ faults: [{ kind: "no_ip", count: 1 }] });
  const t = await selftest(h);
  expect(t.code).toBe(1);
  expect(t.by("lease")).toMatchObject({ status: "FAIL", fix: expect.stringContaining("dhcp") });
  expect(t.by("lease").found).toContain(`no lease for ${h.prefix}-`);
  expect(t.by("ready").status).toBe("SKIP");
  expect(t.by("teardown").status).toBe("PASS");
  expect(statuses(t, "FAIL")).toEqual(["lease"]);
  nothingLeft(h);
}, 60_000);

test.concurrent("fault: a restore that boots cold", async () => {
  const h = await host({ overrides: { host: { slots: 1 } } });
  h.host.setTart({ faults: [{ kind: "restore_cold", count: 1 }] });
  const t = await selftest(h, ["--snapshot"]);
  expect(t.code).toBe(1);
  expect(t.by("snapshot-golden").status).toBe("PASS");
  expect(t.by("snapshot-restore")).toMatchObject({ status: "FAIL", found: expect.stringContaining("booted cold") });
  expect(t.by("snapshot-clock").status).toBe("SKIP");
  expect(t.by("snapshot-side-by-side")).toMatchObject({ status: "SKIP", found: "host.slots is 1" });
  expect(statuses(t, "FAIL")).toEqual(["snapshot-restore"]);
  nothingLeft(h);
}, 60_000);

test.concurrent("faults: an old runner in the image, a restored clock that stays off", async () => {
  const h = await host({ overrides: { host: { slots: 1 } }, releases: SUPERSEDED });
  h.host.setTart({ faults: [{ kind: "clock_stuck", count: 10 }] });
  const t = await selftest(h, ["--snapshot"]);
  expect(t.code).toBe(1);
  expect(t.by("runner-version")).toMatchObject({ status: "FAIL", found: expect.stringContaining("runner 2.336.0 was superseded by v2.337.0 40 day(s) ago") });
  expect(t.by("snapshot-restore").status).toBe("PASS");
  expect(t.by("snapshot-clock")).toMatchObject({ status: "FAIL", found: expect.stringMatching(/sntp -sS time.apple.com failed \(sntp: Exchange failed: timeout/) });
  expect(statuses(t, "FAIL").sort()).toEqual(["runner-version", "snapshot-clock"]);
  nothingLeft(h);
}, 60_000);

test.concurrent("fault: the guest's host key is not the one known_hosts pins", async () => {
  const dir = join(world.dir, "other-key");
  mkdirSync(dir, { recursive: true });
  spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "key")]);
  const [type, key] = readFileSync(join(dir, "key.pub"), "utf8").split(" ");
  writeFileSync(join(dir, "known_hosts"), `macos-runner-guest ${type} ${key}\n`);
  const h = await host({ overrides: { vm: { ssh: { known_hosts_path: join(dir, "known_hosts") } } } });
  const t = await selftest(h);
  expect(t.code).toBe(1);
  expect(t.by("host-key")).toMatchObject({ status: "FAIL", found: expect.stringMatching(/^the guest presents ssh-ed25519 SHA256:\S+; .* pins ssh-ed25519 SHA256:/) });
  // The slots use exec: ssh refusing the key is worth knowing, not their failure.
  expect(t.by("guest-ssh")).toMatchObject({ status: "WARN", found: expect.stringContaining("refused the guest's host key") });
  // The connection itself got through: Local Network is not the problem.
  expect(t.by("local-network").status).toBe("PASS");
  expect(t.by("guest-exec").status).toBe("PASS");
  nothingLeft(h);
}, 60_000);

test.concurrent("stopped mid-cycle (Ctrl-C): the agent is booted out, its VMs removed, exit 85", async () => {
  const h = await host({ overrides: { vm: { boot_timeout: "60s" } } });
  // A VM that takes its time to boot: the stop comes while the selftest waits for it.
  h.host.setTart({ boot_ms: 30_000 });
  const run = start(world, "selftest", ["--config", h.path, "--report", h.reportPath], { ...h.host.env, SIM_LAUNCHD: h.launchd });
  const out = join(h.stateDir, "selftest", "selftest.out");
  await until("the selftest's clone", () => existsSync(out) && readFileSync(out, "utf8").includes("PASS  clone"), 30_000);
  await until("its VM to run", () => aVmRuns(h), 10_000);
  run.child.kill("SIGINT");
  const r = await run.done;
  expect(r.code).toBe(85);
  expect(r.stdout).toMatch(/^SKIP {2}lease +stopped by a signal$/m);
  nothingLeft(h);
}, 60_000);

test.concurrent("--help lists its exit codes; no GUI session is exit 69 with what to do, and nothing is loaded", async () => {
  const help = await start(world, "selftest", ["--help"]).done;
  expect(help.code).toBe(0);
  for (const row of [/^ +1 {2}failure +at least one check FAILed/m, /^ +69 {2}unavailable/m, /^ +83 {2}timeout/m, /^ +85 {2}stopped/m]) expect(help.stdout).toMatch(row);
  const h = await host();
  writeFileSync(join(h.launchd, "no-gui"), "");
  const r = await start(world, "selftest", ["--config", h.path], { ...h.host.env, SIM_LAUNCHD: h.launchd }).done;
  expect(r.code).toBe(69);
  expect(r.lines.at(-1)?.msg).toContain("Enable automatic login for this user");
  expect(existsSync(join(h.launchd, "loaded")) ? readdirSync(join(h.launchd, "loaded")) : []).toEqual([]);
}, 30_000);

test.concurrent("Local Network withheld (nobody allowed the prompt): over exec the slots are fine and ssh's refusal is a WARN; over ssh the VM is never ready (FAIL)", async () => {
  const overExec = await host({ localNetwork: "withheld" });
  // It can never be ready: the boot waits out a short vm.boot_timeout.
  const overSsh = await host({ localNetwork: "withheld", overrides: { vm: { transport: "ssh", boot_timeout: "5s" } } });
  const [e, s] = await Promise.all([selftest(overExec), selftest(overSsh)]);
  expect(e.code).toBe(0);
  expect(e.by("ready")).toMatchObject({ status: "PASS", found: expect.stringContaining("ready over exec") });
  expect(e.by("local-network")).toMatchObject({ status: "WARN", found: expect.stringContaining("refused before SSH answered") });
  expect(e.by("guest-ssh").status).toBe("WARN");
  expect(e.by("host-key")).toMatchObject({ status: "SKIP", found: expect.stringContaining("Local Network privacy") });
  for (const c of ["guest-exec", "runner-version", "sudo"]) expect(e.by(c).status).toBe("PASS");
  expect(s.code).toBe(1);
  expect(s.by("lease").status).toBe("PASS");
  expect(s.by("ready")).toMatchObject({ status: "FAIL", found: expect.stringContaining("Local Network") });
  nothingLeft(overExec);
  nothingLeft(overSsh);
}, 60_000);

test.concurrent("vm.transport exec without vm.ssh: the ssh checks are SKIPs saying why, the rest pass", async () => {
  const h = await host({ overrides: { vm: { ssh: null } } });
  const t = await selftest(h);
  expect(t.code).toBe(0);
  for (const c of ["guest-ssh", "local-network", "host-key"]) expect(t.by(c)).toMatchObject({ status: "SKIP", found: expect.stringContaining("no vm.ssh in the config") });
  for (const c of ["ready", "guest-exec", "runner-version", "sudo"]) expect(t.by(c).status).toBe("PASS");
  nothingLeft(h);
}, 60_000);
