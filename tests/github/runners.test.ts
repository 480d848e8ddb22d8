// lib/github/runners.ts against the simulated GitHub: the calls per job in
// steady state, the group id cache and its healing, listing a slot's runners
// across pages, the delete outcomes, the scopes' routes, and bad answers
// (malformed, HTML, huge) turned into short, clear errors.
import { expect, test } from "bun:test";
import type { Config } from "../../lib/config/index.ts";
import { BadInputError, exitCode, MacosRunnerError } from "../../lib/core/errors.ts";
import { GitHubRejectedError, GitHubUnavailableError } from "../../lib/github/errors.ts";
import { createRegistrationToken, deleteRunner, findRunnerByName, generateJitConfig, listRunners, runnerGroupId } from "../../lib/github/runners.ts";
import { isSlotsOwn, slotNames, slotPrefix } from "../../lib/config/names.ts";
import { token } from "../../lib/github/runners.ts";
import { calls, captureLog, clientFor, fakeClock, githubConfig, orgInstallationId, simForFile, tempDir } from "./harness.ts";

const h = simForFile({ runnerGroups: ["macos", "linux"] });

const JIT_ROUTE = "/orgs/{org}/actions/runners/generate-jitconfig";
const JIT = `POST ${JIT_ROUTE}`;
const LIST = "GET /orgs/{org}/actions/runners";
const GROUPS = "GET /orgs/{org}/actions/runner-groups";

let n = 0;

function client(o: { auth?: "app" | "pat"; scope?: "org" | "repo" | "enterprise"; stateDir?: string; maxBodyBytes?: number } = {}) {
  const dir = o.stateDir ?? tempDir();
  const logs = captureLog();
  const clock = fakeClock();
  const github = githubConfig(h().sim, { dir, auth: o.auth ?? "pat", scope: o.scope, ...(o.auth === "app" && { installationId: orgInstallationId(h().sim) }) });
  return { gh: clientFor(github, { stateDir: dir, log: logs.log, clock, maxBodyBytes: o.maxBodyBytes }), github, dir, logs, clock };
}

const jitBody = (group = "Default") => ({ name: `rt-${++n}`, group, labels: ["self-hosted", "macOS"], workFolder: "_work" });
const simScope = (kind: "orgs" | "enterprises", name: string) => h().sim.world.registry.scope(kind, name)!;

test("a non-Default group costs one lookup on the first job, then 1 call per job (the JIT config), across cycles", async () => {
  const { dir } = client({ auth: "app" });
  const first = client({ auth: "app", stateDir: dir });
  const jit = await generateJitConfig(first.gh, jitBody("macos"));
  const macos = h().sim.world.registry.scope("orgs", "acme")!.groups.find((g) => g.name === "macos")!;
  expect(h().sim.state().runners.find((r) => r.id === jit.runner.id)?.runner_group_id).toBe(macos.id);
  await h().control.resetRequests();
  for (let i = 0; i < 3; i++) await generateJitConfig(client({ auth: "app", stateDir: dir }).gh, jitBody("macos"));
  expect(calls(await h().control.state())).toEqual({ [JIT]: 3 });
});

test("a cached group id GitHub answers 404 to (group recreated) is dropped and looked up again, once", async () => {
  const { gh, logs } = client();
  gh.groupIds.set("linux", 777);
  const jit = await generateJitConfig(gh, jitBody("linux"));
  const linux = simScope("orgs", "acme").groups.find((g) => g.name === "linux")!;
  expect(h().sim.state().runners.find((r) => r.id === jit.runner.id)?.runner_group_id).toBe(linux.id);
  expect(gh.groupIds.get("linux")).toBe(linux.id);
  expect(calls(await h().control.state())).toEqual({ [JIT]: 2, [GROUPS]: 1 });
  expect(logs.lines().some((l) => l.event === "github.group_stale")).toBe(true);
});

test("an unknown group is a config error listing the groups; a repository has only Default", async () => {
  const err = (await runnerGroupId(client().gh, "windows").catch((e: unknown) => e)) as MacosRunnerError;
  expect(err.exitCode).toBe(exitCode("config"));
  expect(err.message).toBe(`runner.group "windows" does not exist in ${h().sim.url}/acme (groups: Default, macos, linux)`);
  const repo = (await runnerGroupId(client({ scope: "repo" }).gh, "macos").catch((e: unknown) => e)) as MacosRunnerError;
  expect(repo.exitCode).toBe(exitCode("config"));
  expect(repo.message).toContain("repository runners can only use the Default group");
});

test("listRunners finds every runner with the slot's prefix across pages (Link rel=next), and no other", async () => {
  const scope = simScope("orgs", "acme");
  const mine = slotPrefix("lr", 1, "host");
  const names = [
    ...Array.from({ length: 130 }, (_, i) => `${mine}${i.toString(16).padStart(6, "0")}`),
    ...Array.from({ length: 60 }, (_, i) => `${slotPrefix("lr", 10, "host")}${i.toString(16).padStart(6, "0")}`), // slot 10 shares "lr-host-1"
    ...Array.from({ length: 60 }, (_, i) => `someone-else-${i}`),
  ];
  const created = names.map((name) => h().sim.world.registry.create(scope, { name, groupId: 1, labels: ["x"], ephemeral: true, workFolder: "_work" }));
  try {
    const { gh } = client();
    const found = await listRunners(gh, { namePrefix: mine });
    expect(found.map((r) => r.name).sort()).toEqual(names.slice(0, 130).sort());
    expect(found.every((r) => isSlotsOwn(r.name, "lr", 1, "host"))).toBe(true);
    const pages = Math.ceil(h().sim.state().runners.filter((r) => r.scope === "orgs/acme").length / 100);
    expect(calls(await h().control.state())[LIST]).toBe(pages);
  } finally {
    for (const r of created) h().sim.world.registry.delete(r);
  }
});

test("a list that never ends (full pages, no Link header) stops at 100 pages with a bad-input error", async () => {
  const runner = { id: 1, name: "x", os: "macOS", status: "offline", busy: false, labels: [] };
  await h().control.fault({ method: "GET", path: "/orgs/{org}/actions/runners", status: 200, body: { total_count: 100, runners: Array(100).fill(runner) }, count: 200 });
  const err = (await listRunners(client().gh, { namePrefix: "x" }).catch((e: unknown) => e)) as BadInputError;
  expect(err).toBeInstanceOf(BadInputError);
  expect(err.message).toContain("still had more after 100 pages of 100");
  expect(calls(await h().control.state())[LIST]).toBe(100);
});

test("deleteRunner: deleted, gone (404), busy (422 'still running a job'); another 422 is an error, not busy", async () => {
  const { gh } = client();
  const jit = await generateJitConfig(gh, jitBody());
  expect(await deleteRunner(gh, jit.runner.id)).toBe("deleted");
  expect(h().sim.state().runners.some((r) => r.id === jit.runner.id)).toBe(false);
  expect(await deleteRunner(gh, jit.runner.id)).toBe("gone");

  const busy = await generateJitConfig(gh, jitBody());
  const held = h().sim.world.registry.runner(simScope("orgs", "acme"), busy.runner.id);
  held.busy = true; // what GitHub reports while the runner holds a job
  expect(await deleteRunner(gh, busy.runner.id)).toBe("busy");
  held.busy = false;

  await h().control.fault({ method: "DELETE", path: "/orgs/{org}/actions/runners/{runner_id}", status: 422, body: { message: "Validation Failed", documentation_url: "https://docs.github.com/rest", status: "422" } });
  const err = (await deleteRunner(gh, busy.runner.id).catch((e: unknown) => e)) as GitHubRejectedError;
  expect(err).toBeInstanceOf(GitHubRejectedError);
  expect(err.message).toContain('GitHub said 422 "Validation Failed", which is not the busy-runner answer');
  expect(await deleteRunner(gh, busy.runner.id)).toBe("deleted");
});

test("a malformed 201 (runner without id) is a bad-input error (65) naming the call and the field, not the secret", async () => {
  await h().control.fault({ method: "POST", path: JIT_ROUTE, status: 201, body: { runner: { name: "x" }, encoded_jit_config: "c2VjcmV0LWppdC1jb25maWctdmFsdWU=" } });
  const body = jitBody();
  const err = (await generateJitConfig(client().gh, body).catch((e: unknown) => e)) as BadInputError;
  expect(err).toBeInstanceOf(BadInputError);
  expect(err.exitCode).toBe(exitCode("bad-input"));
  expect(err.message).toContain(`creating JIT runner ${body.name} in ${h().sim.url}/acme: GitHub's answer does not have the documented shape (runner.id is missing, expected a non-negative integer)`);
  expect(err.message).not.toContain("c2VjcmV0");
  expect(calls(await h().control.state())).toEqual({ [JIT]: 1 });
});

test("an HTML error page: the error and every log line keep the status and a short excerpt, not the page", async () => {
  const page = `<html><head><title>502 Bad Gateway</title></head><body>${"<p>upstream timed out</p>".repeat(1000)}</body></html>`;
  await h().control.fault({ method: "POST", path: JIT_ROUTE, status: 502, body: page, count: 4 });
  const { gh, logs } = client();
  const err = (await generateJitConfig(gh, jitBody()).catch((e: unknown) => e)) as GitHubUnavailableError;
  expect(err).toBeInstanceOf(GitHubUnavailableError);
  expect(err.message).toContain('GitHub said 502 "502 Bad Gateway upstream timed out');
  expect(err.message.length).toBeLessThan(600);
  expect(logs.lines().filter((l) => l.event === "github.retry")).toHaveLength(3);
  for (const line of logs.text().split("\n")) expect(line.length).toBeLessThan(600);
});

test("an HTML page with status 200 where JSON belongs is a bad-input error with an excerpt", async () => {
  await h().control.fault({ method: "GET", path: "/orgs/{org}/actions/runners", status: 200, body: "<html><body>Please sign in to the proxy</body></html>" });
  const err = (await listRunners(client().gh, { namePrefix: "x" }).catch((e: unknown) => e)) as BadInputError;
  expect(err).toBeInstanceOf(BadInputError);
  expect(err.message).toContain('the answer is not JSON: "Please sign in to the proxy"');
});

test("an answer over the size cap is not read: a bad-input error, not retried", async () => {
  // The sim's control API takes fault bodies up to 1 MiB, so the client's cap is lowered here.
  await h().control.fault({ method: "POST", path: JIT_ROUTE, status: 201, body: { runner: { id: 1, name: "x" }, encoded_jit_config: "A".repeat(200_000) } });
  const err = (await generateJitConfig(client({ maxBodyBytes: 64 * 1024 }).gh, jitBody()).catch((e: unknown) => e)) as BadInputError;
  expect(err).toBeInstanceOf(BadInputError);
  expect(err.message).toContain("GitHub's answer to POST /orgs/acme/actions/runners/generate-jitconfig (status 201) is larger than 65536 bytes");
  expect(calls(await h().control.state())).toEqual({ [JIT]: 1 });
});

test("a registration token answer without expires_at is a bad-input error", async () => {
  await h().control.fault({ method: "POST", path: "/orgs/{org}/actions/runners/registration-token", status: 201, body: { token: "AABBCCDDEEFF" } });
  const err = (await createRegistrationToken(client().gh).catch((e: unknown) => e)) as BadInputError;
  expect(err).toBeInstanceOf(BadInputError);
  expect(err.message).toContain("expires_at is missing, expected a non-empty string");
});

test("enterprise scope (PAT): the org routes' enterprise twins create, find, list and delete runners in a named group", async () => {
  const { gh } = client({ scope: "enterprise" });
  const body = jitBody("macos");
  const jit = await generateJitConfig(gh, body);
  const macos = simScope("enterprises", "acme-ent").groups.find((g) => g.name === "macos")!;
  expect(h().sim.state().runners.find((r) => r.id === jit.runner.id)).toMatchObject({ scope: "enterprises/acme-ent", runner_group_id: macos.id });
  expect((await findRunnerByName(gh, body.name))?.id).toBe(jit.runner.id);
  expect((await listRunners(gh, { namePrefix: "rt-" })).map((r) => r.id)).toContain(jit.runner.id);
  expect(await deleteRunner(gh, jit.runner.id)).toBe("deleted");
  expect(calls(await h().control.state())).toEqual({
    "POST /enterprises/{enterprise}/actions/runners/generate-jitconfig": 1,
    "GET /enterprises/{enterprise}/actions/runner-groups": 1,
    "GET /enterprises/{enterprise}/actions/runners": 2,
    "DELETE /enterprises/{enterprise}/actions/runners/{runner_id}": 1,
  });
  // The sim checks each answer against GHEC's description (earlier tests' malformed faults are org violations).
  expect(h().sim.state().violations.filter((v) => v.includes("/enterprises/"))).toEqual([]);
});

test("token: a JIT POST whose answer was lost (it succeeded on GitHub) meets 409 on retry; that runner is removed and a new name used", async () => {
  const { gh, github, dir, clock } = client({ auth: "app" });
  const config: Config = {
    file: `${dir}/config.yml`,
    github,
    runner: { namePrefix: "tk", labels: ["self-hosted", "macOS"], group: "Default", workFolder: "_work", jobTimeoutMs: 60_000, listenTimeoutMs: 60_000, exitTimeoutMs: 60_000 },
    image: { ref: "registry.local/macos:latest", insecure: true, pullIntervalMs: 300_000, runnerReleasesUrl: "https://api.github.com/repos/actions/runner/releases" },
    vm: { bootTimeoutMs: 60_000, start: "cold", transport: "exec", nextVmMaxAgeMs: 3_600_000, reuseIdle: true, idleReuseMaxMs: 3_600_000, ssh: { user: "admin", port: 22, privateKeyPath: `${dir}/id`, knownHostsPath: `${dir}/known_hosts` } },
    host: { slots: 2, tartPath: "tart", stateDir: dir, logDir: dir, dhcpLeasesPath: `${dir}/leases`, backoffInitialMs: 100, backoffMaxMs: 1000 },
  };
  const names = slotNames("tk", 2, "host");
  const name = `${names.prefix}aaaaaa`;
  await h().control.fault({ method: "POST", path: JIT_ROUTE, drop: true });
  const jit = await token({ config, names, name, log: captureLog().log, gh });
  expect(jit.runner.name).not.toBe(name);
  expect(names.owns(jit.runner.name)).toBe(true);
  const ours = h().sim.state().runners.filter((r) => r.name.startsWith(names.prefix));
  expect(ours.map((r) => r.name)).toEqual([jit.runner.name]);
  expect(calls(await h().control.state())).toMatchObject({ [JIT]: 3, [LIST]: 1, "DELETE /orgs/{org}/actions/runners/{runner_id}": 1 });
  expect(clock.waits).toHaveLength(1); // the backoff after the lost answer
});
