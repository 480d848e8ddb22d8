// The scripted session: one GitHub Actions job through the whole simulated
// world with real clients only: @octokit/auth-app + @octokit/request against
// sim/github, the fake tart against the real registry, the system ssh client
// into the guest, the fake actions runner inside it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createAppAuth } from "@octokit/auth-app";
import { request } from "@octokit/request";
import { parse } from "yaml";
import { REGISTRY_MISSING_NOTICE, startWorld, type World } from "../../sim/world.ts";
import { runState } from "../../sim/tart/running.ts";

let world: World;

beforeAll(async () => {
  world = await startWorld({ registry: "required", tart: { boot_ms: 300 } });
});
afterAll(async () => {
  await world?.stop();
});

function tart(...args: string[]) {
  const r = spawnSync("tart", args, { env: { ...process.env, ...world.env }, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function spawnAsync(cmd: string, args: string[], input: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
    child.stdin.end(input);
  });
}

function sshArgs(ip: string, knownHosts = world.knownHostsPath): string[] {
  return [
    "-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlias=macos-runner-guest", "-o", `UserKnownHostsFile=${knownHosts}`,
    "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-i", world.sshKeyPath, "-p", String(world.tartSettings().ssh_port), `admin@${ip}`,
  ];
}

async function bootVM(name: string): Promise<{ ip: string; exited: Promise<number | null> }> {
  expect(tart("clone", "--insecure", world.imageRef, name).code).toBe(0);
  expect(tart("set", name, "--random-mac").code).toBe(0);
  const run = spawn("tart", ["run", "--no-graphics", name], { env: { ...process.env, ...world.env }, stdio: "ignore", detached: true });
  const exited = new Promise<number | null>((r) => run.on("exit", (code) => r(code)));
  const ip = tart("ip", name, "--wait", "30");
  expect(ip.stderr).toBe("");
  // The lease comes before sshd answers.
  const deadline = Date.now() + 10_000;
  while (!runState(join(world.tartHome, "vms", name))?.booted && Date.now() < deadline) await Bun.sleep(25);
  return { ip: ip.stdout.trim(), exited };
}

describe("scripted session", () => {
  test("ssh refuses a guest whose host key is not the pinned one", async () => {
    const { ip, exited } = await bootVM("cycle-2");
    try {
      const wrong = join(world.dir, "wrong_known_hosts");
      writeFileSync(wrong, "macos-runner-guest ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDQX5ZKxmf0+0ZJ2pLGNbFnhaQ5m0Z4Jm4W9wq8GcBnb\n");
      const r = spawnSync("ssh", [...sshArgs(ip, wrong), "true"], { encoding: "utf8", timeout: 20_000 });
      expect(r.status).toBe(255);
      expect(r.stderr).toContain("Host key verification failed");
      expect(spawnSync("ssh", [...sshArgs(ip), "true"], { encoding: "utf8", timeout: 20_000 }).status).toBe(0);
    } finally {
      // Its VM goes with it: the session test expects a world with no VM left.
      tart("stop", "cycle-2");
      await exited;
      tart("delete", "cycle-2");
    }
  });

  // The shared world's last VM test (it expects no VM left), run beside the tests of worlds of their own.
  test.concurrent("a queued job runs in a fresh VM; GitHub shows it done and the runner gone; nothing is left", async () => {
    const installation = world.github.app.installations.find((i) => i.account === "acme")!;
    const auth = createAppAuth({
      appId: world.github.app.id,
      privateKey: world.github.app.privateKeyPem,
      installationId: installation.id,
      request: request.defaults({ baseUrl: world.github.url }),
    });
    const { token } = await auth({ type: "installation" });
    const jit = await request("POST /orgs/{org}/actions/runners/generate-jitconfig", {
      baseUrl: world.github.url,
      headers: { authorization: `token ${token}` },
      org: "acme",
      name: "sim-host-1-abc123",
      runner_group_id: 1,
      labels: ["self-hosted", "macOS", "ARM64"],
      work_folder: "_work",
    });
    expect(jit.status).toBe(201);
    const job = await world.gh.enqueueJob({ name: "build", labels: ["self-hosted", "macOS"], script: 'echo "hello from $USER"' });

    const { ip, exited } = await bootVM("cycle-1");
    // Asynchronously: sim/github runs in this process and must keep serving.
    const session = await spawnAsync(
      "ssh",
      [...sshArgs(ip), "IFS= read -r ACTIONS_RUNNER_INPUT_JITCONFIG && export ACTIONS_RUNNER_INPUT_JITCONFIG && exec ./actions-runner/run.sh"],
      `${jit.data.encoded_jit_config}\n`,
    );
    expect(session.stderr).toBe("");
    expect(session.status).toBe(0);
    expect(session.stdout).toContain("Listening for Jobs");
    expect(session.stdout).toContain("Running job: build");
    expect(session.stdout).toContain("Job build completed with result: Succeeded");

    const state = await world.gh.state();
    const done = state.jobs.find((j) => j.id === job.id)!;
    expect(done).toMatchObject({ status: "completed", result: "Succeeded", exit_code: 0, runner_name: "sim-host-1-abc123" });
    expect(done.output).toContain("hello from admin");
    expect(state.runners.find((r) => r.name === "sim-host-1-abc123")).toBeUndefined();

    const vmDir = join(world.tartHome, "vms", "cycle-1");
    const runPid = runState(vmDir)!.pid;
    expect(tart("stop", "cycle-1")).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(await exited).toBe(0);
    expect(tart("delete", "cycle-1")).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(existsSync(vmDir)).toBe(false);
    expect(tart("list", "-q", "--source", "local").stdout).toBe("");
    expect(existsSync(`/proc/${runPid}`)).toBe(false);
  }, 60_000);
});

describe("world", () => {
  test.concurrent("writeConfig: the config schema, deep-merged overrides, null deletes", () => {
    const path = world.writeConfig({ runner: { labels: ["self-hosted", "sim"] }, image: { username: null, password_path: null } }, "custom.yml");
    const config = parse(readFileSync(path, "utf8"));
    expect(config.github.url).toBe(`${world.github.url}/acme`);
    expect(config.github.api_url).toBe(world.github.url);
    expect(config.github.app.private_key_path).toBe(world.appKeyPath);
    expect(config.runner.labels).toEqual(["self-hosted", "sim"]);
    expect(config.image).toEqual({ ref: world.imageRef, insecure: true });
    expect(config.vm.ssh).toMatchObject({ user: "admin", private_key_path: world.sshKeyPath, known_hosts_path: world.knownHostsPath });
    expect(config.host.tart_path).toEndWith("dist/sim/tart");
  });

  test.concurrent("optional registry: without docker-registry the image is a local VM, with a one-line notice", async () => {
    const lines: string[] = [];
    const local = await startWorld({ registry: "optional", registryBinary: "/nonexistent/docker-registry", notice: (l) => lines.push(l) });
    try {
      expect(lines).toEqual([REGISTRY_MISSING_NOTICE]);
      expect(local.registry).toBeUndefined();
      expect(local.env.TART_REGISTRY_USERNAME).toBeUndefined();
      const r = spawnSync("tart", ["list", "-q"], { env: { ...process.env, ...local.env }, encoding: "utf8" });
      expect(r.stdout).toBe(`${local.imageRef}\n`);
    } finally {
      await local.stop();
    }
    expect(existsSync(local.dir)).toBe(false);
  });

  test.concurrent("tart settings: a profile and a scale, explicit times overriding the profile", async () => {
    const w = await startWorld({ registry: "optional", registryBinary: "/nonexistent/docker-registry", notice: () => {}, tart: { profile: "scaled", scale: 0.5, stop_ms: 100 } });
    try {
      expect(w.tartSettings()).toMatchObject({ profile: "scaled", scale: 0.5, boot_ms: 1250, clone_ms: 100, stop_ms: 50, ssh_port: 2222 });
      w.setTart({ profile: "realistic", scale: 1, stop_ms: undefined });
      expect(w.tartSettings()).toMatchObject({ boot_ms: 13_000, stop_ms: 1_000 });
    } finally {
      await w.stop();
    }
  });

  test.concurrent("stop() kills what it started, even a running VM, and removes its dir", async () => {
    const w = await startWorld({ registry: "required", tart: { boot_ms: 100 } });
    const env = { ...process.env, ...w.env };
    expect(spawnSync("tart", ["clone", "--insecure", w.imageRef, "left"], { env }).status).toBe(0);
    spawn("tart", ["run", "left"], { env, stdio: "ignore", detached: true }).unref();
    expect(spawnSync("tart", ["ip", "left", "--wait", "10"], { env }).status).toBe(0);
    const pid = runState(join(w.tartHome, "vms", "left"))!.pid;
    const registryPort = w.registry!.url.split(":")[1];
    await w.stop();
    expect(existsSync(w.dir)).toBe(false);
    const deadline = Date.now() + 3000;
    while (!processGone(pid) && Date.now() < deadline) await Bun.sleep(20);
    expect(processGone(pid)).toBe(true);
    expect(await fetch(`http://127.0.0.1:${registryPort}/v2/`).then(() => "up", () => "down")).toBe("down");
  });
});

function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.split(") ")[1]?.startsWith("Z") === true;
  } catch {
    return true;
  }
}
