// `doctor`, the compiled binary, against the simulated world: a good host
// passes; each way a host can be broken fails the check that explains it,
// with advice that fixes it. On Linux the macOS-only checks are SKIPs.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CheckResult } from "../lib/host/doctor/index.ts";
import { machineId, newName } from "../lib/config/names.ts";
import { MIN_TART_VERSION } from "../lib/vm/tart-version.ts";
import { startWorld, type World } from "../sim/world.ts";
import { ensureBinaries, start, tartVms, until, worldEnv } from "./helpers/e2e.ts";

/** The host part of names with no host.id and nothing pinned: the machine's id (here /etc/machine-id), not the hostname. */
const HOST = machineId()!.id;

let world: World;
let n = 0;

beforeAll(async () => {
  ensureBinaries(["doctor"]);
  world = await startWorld({
    registry: "required",
    tart: { boot_ms: 150 },
    github: {
      orgs: ["acme", "bare", "limited"],
      installations: [{ account: "acme" }, { account: "limited", permissions: { metadata: "read" } }],
    },
  });
  // A host that has served before has the image in tart's cache.
  const pull = spawnSync("tart", ["pull", world.imageRef, "--insecure"], { env: worldEnv(world), encoding: "utf8" });
  if (pull.status !== 0) throw new Error(`tart pull failed: ${pull.stderr}`);
});

afterAll(async () => {
  await world?.stop();
});

function config(overrides: Record<string, unknown> = {}): string {
  const name = `doctor-${++n}`;
  const host = { state_dir: join(world.dir, name, "state"), log_dir: join(world.dir, name, "logs"), ...((overrides.host as object) ?? {}) };
  return world.writeConfig({ ...overrides, host }, `${name}.yml`);
}

/** doctor --json; with `text`, also the table (a second run, at once), for the tests that read it. */
async function doctor(path: string, o: { text?: boolean } = {}) {
  const [json, text] = await Promise.all([start(world, "doctor", ["--config", path, "--json"]).done, o.text ? start(world, "doctor", ["--config", path]).done : undefined]);
  const report = JSON.parse(json.stdout) as { ok: boolean; failed: number; results: CheckResult[] };
  const by = (check: string) => {
    const r = report.results.find((x) => x.check === check);
    if (!r) throw new Error(`no ${check} in ${JSON.stringify(report.results.map((x) => x.check))}`);
    return r;
  };
  const failed = report.results.filter((r) => r.status === "FAIL").map((r) => r.check);
  return { code: json.code, textCode: text?.code, text: text?.stdout ?? "", report, by, failed };
}

const MACOS_ONLY = ["gui-session", "launchd-agents", "dhcp-lease-time", "dhcp-leases"];

test.concurrent("a good host: every check passes; the macOS-only ones are SKIPs on Linux; exit 0", async () => {
  const d = await doctor(config(), { text: true });
  expect(d.report.results.filter((r) => r.status !== "PASS" && r.status !== "SKIP")).toEqual([]);
  expect([d.code, d.textCode]).toEqual([0, 0]);
  for (const c of MACOS_ONLY) expect(d.by(c)).toEqual({ status: "SKIP", check: c, found: "macOS only", fix: "" });
  // The default transport needs no network, so no Local Network grant.
  expect(d.by("local-network")).toMatchObject({ status: "PASS", found: expect.stringContaining("vm.transport exec") });
  for (const c of ["config", "secrets", "known-hosts", "tart", "vm-limit", "leaked-vms", "disk", "github-key", "github-jwt", "github-clock", "github-installation", "github-permission", "github-runner-group", "github-offline-runners", "registry", "image-tag", "image-local"]) {
    expect(d.by(c).status).toBe("PASS");
  }
  expect(d.by("tart").found).toMatch(/^tart 2\.35\.0 at /);
  // The compiled linux binary: no Mach-O signature to check.
  expect(d.by("signature")).toMatchObject({ status: "SKIP", found: expect.stringMatching(/macos-runner runs on linux, not macOS: a Mac checks its own with codesign$/) });
  expect(d.by("github-permission").found).toBe("the installation grants organization_self_hosted_runners: write");
  expect(d.by("runner-version")).toMatchObject({ status: "SKIP" });
  // One line per check: STATUS check: found[; fix]
  const lines = d.text.trim().split("\n");
  expect(lines.slice(0, d.report.results.length).every((l) => /^(PASS|WARN|FAIL|SKIP) [a-z-]+: .+/.test(l))).toBe(true);
  expect(lines.at(-1)).toMatch(/^\d+ pass, 0 warn, 0 fail, \d+ skip$/);
}, 60_000);

test.concurrent("local-network reads what the slot agents saw: a refusal one of them met fails it, with the fix", async () => {
  const name = `doctor-${n + 1}`;
  const path = config({ vm: { transport: "ssh" } });
  const stateDir = join(world.dir, name, "state");
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(join(stateDir, "reach-2.json"), JSON.stringify({ slot: 2, transport: "ssh", outcome: "refused", at: "2026-12-07T10:00:00.000Z", detail: "No route to host" }));
  const d = await doctor(path);
  expect(d.by("local-network")).toMatchObject({ status: "FAIL", found: expect.stringContaining("slot 2 was refused by Local Network privacy") });
  expect(d.by("local-network").fix).toContain("vm.transport: exec");
  expect(d.by("local-network").fix).toContain("System Settings > Privacy & Security > Local Network");
  expect(d.code).not.toBe(0);
}, 60_000);

test.concurrent("vm.transport exec without vm.ssh: no ssh key to check, known-hosts a SKIP, exit 0; vm.transport ssh without it is a config FAIL", async () => {
  const d = await doctor(config({ vm: { ssh: null } }));
  expect(d.failed).toEqual([]);
  expect(d.by("secrets")).toMatchObject({ status: "PASS", found: expect.not.stringContaining("vm.ssh") });
  expect(d.by("known-hosts")).toEqual({ status: "SKIP", check: "known-hosts", found: "vm.ssh.known_hosts_path is not set; vm.transport exec does not use ssh", fix: "" });
  expect(d.code).toBe(0);
  const ssh = await doctor(config({ vm: { transport: "ssh", ssh: null } }));
  expect(ssh.by("config")).toMatchObject({ status: "FAIL", found: expect.stringContaining("vm.transport: ssh needs a vm.ssh section") });
  expect(ssh.by("known-hosts")).toMatchObject({ status: "FAIL", found: "vm.ssh.known_hosts_path is not set" });
}, 60_000);

test.concurrent("a host on a PAT: the app checks are SKIPs, the PAT lists runners, exit 0", async () => {
  const d = await doctor(config({ github: { app: null, token_path: world.patPath } }));
  expect(d.failed).toEqual([]);
  expect(d.by("github-key").found).toBe(`PAT in ${world.patPath}`);
  expect([d.by("github-jwt").status, d.by("github-installation").status]).toEqual(["SKIP", "SKIP"]);
  expect(d.by("github-permission")).toMatchObject({ status: "PASS", found: "the PAT can list runners" });
  expect(d.by("github-offline-runners").status).toBe("PASS");
  expect(d.code).toBe(0);
});

describe("each broken setup fails the check that explains it", () => {
  test.concurrent("wrong app id", async () => {
    const d = await doctor(config({ github: { app: { id: 999 } } }), { text: true });
    expect(d.code).toBe(1);
    expect(d.failed).toEqual(["github-jwt"]);
    expect(d.by("github-jwt").found).toBe('GitHub knows no app with id 999 ("Integration not found")');
    expect(d.by("github-jwt").fix).toContain("set github.app.id");
    expect(d.text).toContain('FAIL github-jwt: GitHub knows no app with id 999 ("Integration not found"); set github.app.id');
  });

  test.concurrent("app not installed on the org", async () => {
    const d = await doctor(config({ github: { url: `${world.github.url}/bare`, app: { installation_id: null } } }));
    expect(d.failed).toEqual(["github-installation"]);
    expect(d.by("github-installation").found).toContain(`the app is not installed on ${world.github.url}/bare`);
    expect(d.by("github-installation").fix).toContain("install the GitHub App");
    expect(d.by("github-permission").status).toBe("SKIP");
  });

  test.concurrent("missing runner permission", async () => {
    const d = await doctor(config({ github: { url: `${world.github.url}/limited`, app: { installation_id: null } } }));
    expect(d.failed).toEqual(["github-permission"]);
    expect(d.by("github-permission").found).toBe("the installation grants organization_self_hosted_runners: none (runners need write)");
    expect(d.by("github-permission").fix).toContain('add the "organization_self_hosted_runners" permission (Read and write)');
  });

  // Not concurrent: GitHub's clock is every test's.
  test("clock skew: reported from GitHub's Date header", async () => {
    await world.gh.setClockOffset(-5 * 60_000);
    try {
      const d = await doctor(config());
      expect(d.failed).toEqual(["github-jwt", "github-clock"]);
      expect(d.by("github-clock").found).toMatch(/^this host's clock is 30\d s ahead of GitHub's: app JWTs are refused/);
      expect(d.by("github-clock").fix).toContain("Set time automatically");
      // Our clock ahead: the JWT's exp lands more than 10 min past GitHub's now.
      expect(d.by("github-jwt").found).toMatch(/'Expiration time' claim \('exp'\) is too far in the future/);
    } finally {
      await world.gh.setClockOffset(0);
    }
  });

  test.concurrent("registry refuses the credentials", async () => {
    const wrong = join(world.dir, `wrong-password-${n}`);
    writeFileSync(wrong, "not-the-password\n", { mode: 0o600 });
    const d = await doctor(config({ image: { password_path: wrong } }));
    expect(d.failed).toEqual(["registry"]);
    expect(d.by("registry").found).toMatch(/refused user ci \(401\)/);
    expect(d.by("registry").fix).toContain("image.password_path");
  });

  test.concurrent("the tag is missing from the registry", async () => {
    const ref = world.imageRef.replace(/:[^:/]+$/, ":no-such-tag");
    const d = await doctor(config({ image: { ref } }));
    expect(d.failed).toEqual(["image-tag"]);
    expect(d.by("image-tag").found).toBe("macos-runner:no-such-tag is not in " + ref.split("/")[0]);
    expect(d.by("image-local")).toMatchObject({ status: "WARN" });
  });

  // Not concurrent: every doctor run would see this VM.
  test("a leaked VM: running, named by no slot's state", async () => {
    const vm = newName("sim", 1, HOST);
    const env = worldEnv(world);
    expect(spawnSync("tart", ["clone", world.imageRef, vm, "--insecure"], { env }).status).toBe(0);
    const run = spawn("tart", ["run", "--no-graphics", vm], { env, stdio: "ignore", detached: true });
    try {
      await until("the leaked VM to run", () => {
        const r = spawnSync("tart", ["list", "--format", "json", "--source", "local"], { env, encoding: "utf8" });
        return (JSON.parse(r.stdout) as { Name: string; Running: boolean }[]).some((v) => v.Name === vm && v.Running);
      });
      const d = await doctor(config());
      expect(d.failed).toEqual(["vm-limit", "leaked-vms"]);
      expect(d.by("vm-limit").found).toMatch(/^1 VM\(s\) running .*; only 1 of 2 slot\(s\) can start a VM under the 2-VM limit$/);
      expect(d.by("leaked-vms").found).toBe(`running but named by no slot's state: ${vm}`);
      expect(d.by("leaked-vms").fix).toBe(`tart stop ${vm} && tart delete ${vm} (or cleanup --slot N --sweep)`);
    } finally {
      spawnSync("tart", ["stop", vm], { env });
      spawnSync("tart", ["delete", vm], { env });
      run.kill("SIGKILL");
    }
    expect(tartVms(world)).not.toContain(vm);
  });

  // Not concurrent: tart's version is every test's.
  test(`tart older than ${MIN_TART_VERSION}, or one whose version is not a version: tart FAILs saying what it saw and why`, async () => {
    try {
      world.setTart({ version: "2.32.1" });
      const old = await doctor(config());
      expect(old.failed).toEqual(["tart"]);
      expect(old.code).toBe(1);
      expect(old.by("tart").found).toStartWith(`tart 2.32.1 is older than ${MIN_TART_VERSION}, the lowest supported: older tart spins a CPU core at 100 %`);
      expect(old.by("tart").fix).toBe(`upgrade tart to ${MIN_TART_VERSION} or later (brew upgrade cirruslabs/cli/tart)`);
      world.setTart({ version: "SNAPSHOT" });
      const odd = await doctor(config());
      expect(odd.failed).toEqual(["tart"]);
      expect(odd.by("tart").found).toStartWith(`tart --version printed "SNAPSHOT", not a release version (X.Y.Z) to compare with ${MIN_TART_VERSION}`);
    } finally {
      world.setTart({ version: undefined });
    }
  });

  test.concurrent("a world-readable app key: the config and the secrets checks say chmod 600", async () => {
    const key = join(world.dir, `app-readable-${n}.pem`);
    copyFileSync(world.appKeyPath, key);
    chmodSync(key, 0o644);
    const d = await doctor(config({ github: { app: { private_key_path: key } } }));
    expect(d.failed).toEqual(["config", "secrets"]);
    expect(d.by("secrets").found).toBe(`github.app.private_key_path: ${key} is mode 0644 (others can read it)`);
    expect(d.by("secrets").fix).toBe(`chmod 600 ${key}`);
    expect(d.by("config").found).toContain("chmod 600");
    // Nothing else can be judged without a valid config: skipped, not failed.
    expect(d.by("github-jwt").status).toBe("SKIP");
  });
});

describe("the pinned image and its runner", () => {
  /** A config whose state dir holds an image.lock. */
  function pinned(lock: object, overrides: Record<string, unknown> = {}): string {
    const path = config(overrides);
    const stateDir = join(world.dir, `doctor-${n}`, "state");
    mkdirSync(stateDir, { recursive: true });
    writeFileSync(join(stateDir, "image.lock"), JSON.stringify(lock));
    return path;
  }

  test.concurrent("a pinned digest missing from tart's cache fails image-local with the pull that fixes it", async () => {
    const digest = `sha256:${"0".repeat(64)}`;
    const d = await doctor(pinned({ ref: world.imageRef, digest, pinned_at: new Date().toISOString() }));
    expect(d.failed).toEqual(["image-local"]);
    expect(d.by("image-local").found).toContain(`pinned ${digest} (image.lock) is not in tart's cache`);
    expect(d.by("image-local").fix).toBe(`tart pull ${world.imageRef.replace(/:[^:/]+$/, "")}@${digest}, or let pull re-pin`);
    // This lock records no runner version: nothing to compare.
    expect(d.by("runner-version")).toMatchObject({ status: "SKIP" });
  });

  test.concurrent("runner-version: the rule pull --runner-check and selftest use, from image.runner_releases_url: FAIL from 25 days behind, WARN from 14", async () => {
    const day = 86_400_000;
    const release = (tag: string, days: number) => ({ tag_name: tag, published_at: new Date(Date.now() - days * day).toISOString() });
    const releases = [release("v2.339.0", 5), release("v2.338.0", 20), release("v2.337.0", 40), release("v2.336.0", 80)];
    const api = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/mirror/releases") return Response.json(releases);
      if (path === "/mirror/releases/latest") return Response.json(releases[0]);
      return new Response("{}", { status: 404 });
    } });
    try {
      const digest = `sha256:${"0".repeat(64)}`;
      // GitHub's API (github.api_url) has no such releases: a GHES host reads them from its mirror.
      const check = async (runner_version: string) => (await doctor(pinned({ ref: world.imageRef, digest, runner_version }, { image: { runner_releases_url: `http://127.0.0.1:${api.port}/mirror/releases` } }))).by("runner-version");
      const [old, aging, recent, latest] = await Promise.all(["2.336.0", "2.337.0", "2.338.0", "2.339.0"].map(check));
      expect(old).toMatchObject({ status: "FAIL", found: "image.lock: runner 2.336.0 was superseded by v2.337.0 40 day(s) ago (latest v2.339.0); rebuild and push the image now: from day 30 GitHub sends this runner no jobs" });
      expect(old!.fix).toContain("rebuild the golden image");
      expect(aging).toMatchObject({ status: "WARN", found: expect.stringContaining("runner 2.337.0 was superseded by v2.338.0 20 day(s) ago") });
      expect(recent).toMatchObject({ status: "PASS", found: expect.stringContaining("runner 2.338.0 was superseded by v2.339.0 5 day(s) ago") });
      expect(latest).toMatchObject({ status: "PASS", found: "image.lock: runner 2.339.0 is the latest release" });
    } finally {
      api.stop(true);
    }
  });
});
