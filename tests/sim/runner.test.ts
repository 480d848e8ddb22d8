// The fake actions runner (sim/guest/actions-runner), run on this host
// against sim/github: config.sh, run.sh and the listener as real processes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGitHub, type GitHubSim } from "../../sim/github/server.ts";
import { GitHubSimClient } from "../../sim/github/client.ts";

const RUNNER_SRC = join(import.meta.dir, "../../sim/guest/actions-runner");
const TS = String.raw`\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z`;

let sim: GitHubSim;
let client: GitHubSimClient;
const dirs: string[] = [];

beforeAll(async () => {
  sim = await startGitHub({ sessionLeaseMs: 2_000 });
  client = new GitHubSimClient(sim.url);
});

afterAll(async () => {
  await sim.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A runner directory of the test's own (tests run at once; each job's labels are its test's alone). */
function runnerDir(): string {
  const root = mkdtempSync(join(tmpdir(), "sim-runner-"));
  dirs.push(root);
  cpSync(RUNNER_SRC, root, { recursive: true });
  return root;
}

let names = 0;
const uniqueName = (base: string) => `${base}-${++names}`;

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; data: any }> {
  const res = await fetch(`${sim.url}${path}`, {
    method,
    headers: { authorization: `token ${sim.pat}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, data: text ? JSON.parse(text) : undefined };
}

async function jitRunner(name: string, labels = ["self-hosted", "macOS", "ARM64"]): Promise<{ id: number; config: string }> {
  const res = await api("POST", "/orgs/acme/actions/runners/generate-jitconfig", { name, runner_group_id: 1, labels });
  expect(res.status).toBe(201);
  return { id: res.data.runner.id, config: res.data.encoded_jit_config };
}

/** A started script whose output is collected as it comes. */
function launch(root: string, script: string, args: string[], env: Record<string, string | undefined> = {}) {
  const proc = Bun.spawn(["/bin/sh", join(root, script), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, USER: "ci", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = { stdout: "", stderr: "" };
  /** What each read of a stream gave, in order (a line written in two parts may come in two). */
  const chunks = { stdout: [] as string[], stderr: [] as string[] };
  const pump = async (stream: ReadableStream<Uint8Array>, key: "stdout" | "stderr") => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const text = decoder.decode(chunk);
      out[key] += text;
      chunks[key].push(text);
    }
  };
  const pumped = Promise.all([pump(proc.stdout, "stdout"), pump(proc.stderr, "stderr")]);
  return {
    proc,
    out,
    chunks,
    async waitForLine(pattern: RegExp, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(out.stdout)) {
        if (Date.now() > deadline) throw new Error(`no line matching ${pattern} within ${timeoutMs} ms; stdout:\n${out.stdout}\nstderr:\n${out.stderr}`);
        await Bun.sleep(20);
      }
    },
    async done(timeoutMs = 15_000) {
      const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
      const code = await proc.exited;
      clearTimeout(timer);
      await pumped;
      return { code, ...out };
    },
  };
}

const run = (root: string, args: string[], env?: Record<string, string | undefined>) => launch(root, "run.sh", args, env).done();
const config = (root: string, args: string[], env?: Record<string, string | undefined>) => launch(root, "config.sh", args, env).done();

describe.concurrent("run.sh with a JIT config", () => {
  test("runs one job: only the runner's own log lines (no job output), result and output in the sim, runner deleted, local config removed", async () => {
    const root = runnerDir();
    const name = uniqueName("jit");
    const { id, config: jit } = await jitRunner(name, ["self-hosted", "macOS", "ARM64", "one-job"]);
    const job = await client.enqueueJob({ name: "build app", labels: ["one-job"], script: 'echo "hello from $PWD"; echo "jit=${ACTIONS_RUNNER_INPUT_JITCONFIG:-unset}"; echo oops >&2' });
    const { code, stdout, stderr } = await run(root, [], { ACTIONS_RUNNER_INPUT_JITCONFIG: jit });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const work = join(root, "_work");
    const expected = [
      "",
      "√ Connected to GitHub",
      "",
      "Current runner version: '2.336.0'",
      `${TS}: Listening for Jobs`,
      `${TS}: Running job: build app`,
      `${TS}: Job build app completed with result: Succeeded`,
      "√ Removed .credentials",
      "√ Removed .runner",
      "Runner listener exit with 0 return code, stop the service, no retry needed.",
      "Exiting runner...",
      "",
    ];
    expect(stdout).toMatch(new RegExp(`^${expected.join("\n")}$`));
    const done = await client.job(job.id);
    expect(done).toMatchObject({ status: "completed", result: "Succeeded", exit_code: 0, runner_id: id, runner_name: name });
    expect(done.output).toBe(`hello from ${work}\njit=unset\noops\n`);
    expect((await client.state()).runners.find((r) => r.id === id)).toBeUndefined();
    expect(existsSync(join(root, ".runner"))).toBe(false);
    expect(existsSync(join(root, ".credentials"))).toBe(false);
  });

  test("--jitconfig on the command line wins over the environment; a failing script is Failed", async () => {
    const root = runnerDir();
    const { config: jit } = await jitRunner(uniqueName("argv"), ["self-hosted", "argv-only"]);
    const job = await client.enqueueJob({ name: "flaky", labels: ["argv-only"], script: "exit 3" });
    const { code, stdout } = await run(root, ["--jitconfig", jit], { ACTIONS_RUNNER_INPUT_JITCONFIG: "not base64 at all" });
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`${TS}: Job flaky completed with result: Failed\n`));
    expect(await client.job(job.id)).toMatchObject({ status: "completed", result: "Failed", exit_code: 3 });
  });

  test("a bad JIT config is an error on stderr; the listener ends with 1, run.sh with 0", async () => {
    const root = runnerDir();
    for (const bad of ["%%%", Buffer.from('{"x":"eQ=="}').toString("base64")]) {
      const { code, stdout, stderr } = await run(root, ["--jitconfig", bad]);
      expect(code).toBe(0);
      expect(stderr).toMatch(/^Failed to decode the JIT configuration \(--jitconfig\): /);
      expect(stdout).toBe("Runner listener exit with terminated error, stop the service, no retry needed.\nExiting runner...\n");
    }
  });

  test("a runner deleted before it connects says so, exits 1 (run.sh 0) and keeps its config files, as the real one", async () => {
    const root = runnerDir();
    const { id, config: jit } = await jitRunner(uniqueName("deleted"));
    expect((await api("DELETE", `/orgs/acme/actions/runners/${id}`)).status).toBe(204);
    const { code, stdout, stderr } = await run(root, ["--jitconfig", jit]);
    expect(code).toBe(0);
    expect(stderr).toBe("The runner no longer exists on the server. Please reconfigure the runner.\n");
    // "Connected to GitHub" comes before the session exists, so a deleted runner prints it too.
    expect(stdout).toStartWith("\n√ Connected to GitHub\n\nRunner listener exit with terminated error");
    for (const f of [".runner", ".credentials", ".credentials_rsaparams"]) expect(existsSync(join(root, f))).toBe(true);
  });

  test("a second JIT config in the same directory is refused while an earlier runner's files are there, and runs once they are removed", async () => {
    const root = runnerDir();
    const first = await jitRunner(uniqueName("first"));
    expect((await api("DELETE", `/orgs/acme/actions/runners/${first.id}`)).status).toBe(204);
    await run(root, ["--jitconfig", first.config]);
    const second = await jitRunner(uniqueName("second"));
    const refused = await run(root, ["--jitconfig", second.config]);
    expect(refused.code).toBe(0);
    expect(refused.stderr).toBe("Cannot configure the runner because it is already configured (.runner, .credentials, .credentials_rsaparams left by an earlier runner). Remove them before running with a JIT configuration.\n");
    expect(JSON.parse(readFileSync(join(root, ".runner"), "utf8")).agentId).toBe(first.id);

    for (const f of [".runner", ".credentials", ".credentials_rsaparams"]) rmSync(join(root, f));
    const runner = launch(root, "run.sh", ["--jitconfig", second.config]);
    await runner.waitForLine(/Listening for Jobs/);
    // A start beside a live listener sees it (and is refused: its files are there).
    const beside = await run(root, ["--jitconfig", (await jitRunner(uniqueName("beside"))).config]);
    expect(beside.stderr).toStartWith("Cannot configure the runner because it is already configured");
    await client.retireRunner(second.id);
    expect((await runner.done()).code).toBe(0);
    // _diag: one record per listener start, saying what it found of the earlier runners.
    const diag = readdirSync(join(root, "_diag")).map((f) => readFileSync(join(root, "_diag", f), "utf8").trim().split("\n").map((l) => JSON.parse(l)));
    const starts = diag.map((r) => r[0]).sort((a, b) => a.at - b.at);
    const all = [".runner", ".credentials", ".credentials_rsaparams"];
    expect(starts.map((r) => [r.event, r.found, r.listeners.length])).toEqual([
      ["start", [], 0],
      ["start", all, 0],
      ["start", [], 0],
      ["start", all, 1],
    ]);
    expect(starts[3].listeners).toEqual([starts[2].pid]);
    const last = diag.find((r) => r[0].at === starts[2].at)!;
    expect(last.map((r) => r.event)).toEqual(["start", "configured", "exit"]);
    expect(last[1].agentId).toBe(second.id);
  });

  test("a runner deleted while listening says so and exits 0", async () => {
    const root = runnerDir();
    const { id, config: jit } = await jitRunner(uniqueName("idle"));
    const runner = launch(root, "run.sh", ["--jitconfig", jit]);
    await runner.waitForLine(/Listening for Jobs/);
    expect((await api("DELETE", `/orgs/acme/actions/runners/${id}`)).status).toBe(204);
    const { code, stderr } = await runner.done();
    expect(code).toBe(0);
    expect(stderr).toBe("The runner no longer exists on the server. Cleaning up local configuration.\n");
  });

  test("an idle runner retired by GitHub (POST /_sim/runners/{id}/retire) says so and exits 0", async () => {
    const root = runnerDir();
    const { id, config: jit } = await jitRunner(uniqueName("retired"));
    const runner = launch(root, "run.sh", ["--jitconfig", jit]);
    await runner.waitForLine(/Listening for Jobs/);
    await client.retireRunner(id);
    const { code, stdout, stderr } = await runner.done();
    expect(code).toBe(0);
    expect(stderr).toBe("The runner no longer exists on the server. Cleaning up local configuration.\n");
    expect(stdout).toEndWith("Runner listener exit with 0 return code, stop the service, no retry needed.\nExiting runner...\n");
    expect(existsSync(join(root, ".runner"))).toBe(false);
    expect((await client.state()).runners.find((r) => r.id === id)).toBeUndefined();
  });

  test("SIGTERM while listening deletes the session but not the registration", async () => {
    const root = runnerDir();
    const name = uniqueName("term");
    const { id, config: jit } = await jitRunner(name);
    const runner = launch(root, "run.sh", ["--jitconfig", jit]);
    await runner.waitForLine(/Listening for Jobs/);
    expect((await client.state()).runners.find((r) => r.id === id)).toMatchObject({ status: "online" });
    runner.proc.kill("SIGTERM");
    const { code } = await runner.done();
    expect(code).toBe(0);
    expect((await client.state()).runners.find((r) => r.id === id)).toMatchObject({ name, status: "offline", busy: false });
  });

  test("SIGTERM during a job stops it; the job fails (GitHub never re-queues it)", async () => {
    const root = runnerDir();
    const { config: jit } = await jitRunner(uniqueName("midjob"), ["self-hosted", "midjob"]);
    const job = await client.enqueueJob({ name: "slow", labels: ["midjob"], script: "echo started; sleep 30" });
    const runner = launch(root, "run.sh", ["--jitconfig", jit]);
    await runner.waitForLine(/Running job: slow/);
    runner.proc.kill("SIGTERM");
    const { code } = await runner.done();
    expect(code).toBe(0);
    expect(await client.job(job.id)).toMatchObject({ status: "completed", result: "Failed", attempts: 1, failure: expect.stringMatching(/shutdown signal/) });
  });

  test("a runner whose stdout and stderr pipes are gone (its SSH client was killed) keeps listening and runs a job", async () => {
    const root = runnerDir();
    const name = uniqueName("orphan");
    const { config: jit } = await jitRunner(name, ["self-hosted", "orphan"]);
    const child = spawn("/bin/sh", [join(root, "run.sh")], {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, USER: "ci", ACTIONS_RUNNER_INPUT_JITCONFIG: jit },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
    let stdout = "";
    child.stdout!.on("data", (d) => (stdout += d));
    const deadline = Date.now() + 10_000;
    while (!/Listening for Jobs/.test(stdout)) {
      if (Date.now() > deadline) throw new Error(`the runner did not listen; stdout:\n${stdout}`);
      await Bun.sleep(20);
    }
    for (const pipe of [child.stdin!, child.stdout!, child.stderr!]) pipe.destroy();

    const job = await client.enqueueJob({ name: "after the pipes broke", labels: ["orphan"], script: "echo still here" });
    const state = await client.waitFor((st) => st.jobs.find((j) => j.id === job.id)?.status === "completed", { timeoutMs: 10_000 });
    expect(state.jobs.find((j) => j.id === job.id)).toMatchObject({ result: "Succeeded", runner_name: name, output: "still here\n" });
    await client.waitFor((st) => !st.runners.some((r) => r.name === name));
    // The ephemeral listener exits 0 after its job; run.sh's closing echo may then die of SIGPIPE.
    expect([0, "SIGPIPE"]).toContain((await ended).signal ?? (await ended).code!);
  });

  test("SIM_RUNNER_START_MS: the runner takes that long to start before it opens its session", async () => {
    const root = runnerDir();
    const name = uniqueName("slow-start");
    const { id, config: jit } = await jitRunner(name);
    const started = performance.now();
    const runner = launch(root, "run.sh", ["--jitconfig", jit], { SIM_RUNNER_START_MS: "800" });
    await client.waitFor((st) => st.runners.find((r) => r.id === id)?.status === "online", { timeoutMs: 5_000, intervalMs: 20 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(800);
    runner.proc.kill("SIGTERM");
    expect((await runner.done()).code).toBe(0);
  });

  test("SIM_GUEST_CLOCK_FILE: while that file exists the runner cannot connect and says so; it retries until the clock is fixed", async () => {
    const root = runnerDir();
    const name = uniqueName("skewed");
    const { id, config: jit } = await jitRunner(name);
    const clockFile = join(root, "clock-unsynced");
    writeFileSync(clockFile, "");
    const runner = launch(root, "run.sh", ["--jitconfig", jit], { SIM_GUEST_CLOCK_FILE: clockFile });
    const deadline = Date.now() + 5_000;
    while (!/Runner connect error/.test(runner.out.stderr)) {
      if (Date.now() > deadline) throw new Error(`no connect error; stderr:\n${runner.out.stderr}`);
      await Bun.sleep(20);
    }
    expect(runner.out.stderr).toMatch(new RegExp(`^${TS}: Runner connect error: [^\n]*clock skew[^\n]*\. Retrying until reconnected\.\n`));
    expect(runner.out.stdout).not.toContain("Listening for Jobs");
    expect((await client.state()).runners.find((r) => r.id === id)?.status).toBe("offline");
    rmSync(clockFile);
    await runner.waitForLine(/Listening for Jobs/);
    expect(runner.out.stderr).toMatch(new RegExp(`\n${TS}: Runner reconnected\.\n$`));
    runner.proc.kill("SIGTERM");
    expect((await runner.done()).code).toBe(0);
  });

  test("SIM_RUNNER_LEAK_SECRETS: the runner prints each secret of its JIT config whole, in pieces and split across two writes, on stdout and stderr", async () => {
    const root = runnerDir();
    const { config: jit } = await jitRunner(uniqueName("leaky"));
    const files = JSON.parse(Buffer.from(jit, "base64").toString("utf8")) as Record<string, string>;
    const file = (name: string) => JSON.parse(Buffer.from(files[name]!, "base64").toString("utf8"));
    const rsa = file(".credentials_rsaparams") as Record<string, string>;
    expect(Object.keys(rsa).sort()).toEqual(["d", "dp", "dq", "exponent", "inverseQ", "modulus", "p", "q"]);
    const { clientId, token } = file(".credentials").data;
    const secrets = [clientId, token, ...Object.values(rsa).filter((v) => v.length >= 30)];
    const runner = launch(root, "run.sh", ["--jitconfig", jit], { SIM_RUNNER_LEAK_SECRETS: "1" });
    await runner.waitForLine(/Listening for Jobs/);
    runner.proc.kill("SIGTERM");
    await runner.done();
    // Reads that ended inside a split line: the sim pauses 20 ms mid-line, but a busy reader can take both writes at once.
    let splitReads = 0;
    for (const key of ["stdout", "stderr"] as const) {
      const text = runner.out[key];
      for (const [i, value] of secrets.entries()) {
        const middle = Math.floor(value.length / 2) - 15;
        expect(text).toContain(`debug: runner secret ${i} whole: ${value}\n`);
        expect(text).toContain(`debug: runner secret ${i} prefix: ${value.slice(0, 43)}\n`);
        expect(text).toContain(`debug: runner secret ${i} middle: ${value.slice(middle, middle + 30)}\n`);
        expect(text).toContain(`debug: runner secret ${i} escaped: ${value.replaceAll("/", "\\/")}\n`);
        expect(text).toContain(`debug: runner secret ${i} split: ${value} (end)\n`);
        const half = value.slice(0, Math.floor(value.length / 2));
        if (runner.chunks[key].some((c) => c.endsWith(`debug: runner secret ${i} split: ${half}`))) splitReads++;
      }
    }
    // Of the split lines (each secret, on both streams), some came in two reads: one ended inside the value.
    expect(splitReads).toBeGreaterThan(0);
  });

  test("SIM_RUNNER_NOISE_LINES: that many long lines on stderr; not a whole number fails the listener", async () => {
    const root = runnerDir();
    const { config: jit } = await jitRunner(uniqueName("chatty"));
    const runner = launch(root, "run.sh", ["--jitconfig", jit], { SIM_RUNNER_NOISE_LINES: "25" });
    await runner.waitForLine(/Listening for Jobs/);
    runner.proc.kill("SIGTERM");
    await runner.done();
    const noise = runner.out.stderr.split("\n").filter((l) => l.startsWith("debug: noise "));
    expect(noise.map((l) => l.length)).toEqual(Array.from({ length: 25 }, (_, i) => `debug: noise ${i} `.length + 2000));
    // SIGTERM while listening keeps the registration and its files: a second JIT config needs them gone.
    for (const f of [".runner", ".credentials", ".credentials_rsaparams"]) rmSync(join(root, f), { force: true });
    const { config: jit2 } = await jitRunner(uniqueName("chatty-bad"));
    const bad = await run(root, ["--jitconfig", jit2], { SIM_RUNNER_NOISE_LINES: "lots" });
    expect(bad.stderr).toContain("SIM_RUNNER_NOISE_LINES must be a whole number of lines, got 'lots'");
    expect(bad.stdout).toContain("Runner listener exit with terminated error");
  });

  test("root is refused unless RUNNER_ALLOW_RUNASROOT is set", async () => {
    const root = runnerDir();
    const refused = await run(root, ["--jitconfig", "x"], { USER: "root" });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe("Must not run interactively with sudo\n");
    const cfg = await config(root, ["--unattended"], { USER: "root" });
    expect(cfg.code).toBe(1);
    expect(cfg.stderr).toBe("Must not run with sudo\n");
    const allowed = await config(root, ["--unattended"], { USER: "root", RUNNER_ALLOW_RUNASROOT: "1" });
    expect(allowed.code).toBe(1);
    expect(allowed.stderr).toBe("Invalid configuration provided for url. Terminating unattended configuration.\n");
  });
});

describe.concurrent("config.sh", () => {
  async function registrationToken(kind = "registration-token"): Promise<string> {
    return (await api("POST", `/repos/acme/app/actions/runners/${kind}`)).data.token;
  }

  test("registers with a registration token, writes .runner, then run.sh takes a job", async () => {
    const root = runnerDir();
    const name = uniqueName("cfg");
    const token = await registrationToken();
    const { code, stdout, stderr } = await config(root, ["--url", `${sim.url}/acme/app`, "--token", token, "--name", name, "--labels", "gpu,GPU,xl", "--unattended", "--ephemeral"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    for (const line of ["# Authentication", "√ Connected to GitHub", "# Runner Registration", "√ Runner successfully added", "# Runner settings", "√ Settings Saved."]) {
      expect(stdout).toContain(`${line}\n`);
    }
    const dotRunner = JSON.parse(readFileSync(join(root, ".runner"), "utf8"));
    expect(dotRunner).toMatchObject({ agentName: name, poolName: "Default", serverUrl: sim.url, gitHubUrl: `${sim.url}/acme/app`, ephemeral: true });
    const registered = (await client.state()).runners.find((r) => r.name === name)!;
    expect(registered.scope).toBe("repos/acme/app");
    expect(registered.labels.map((l) => l.name)).toEqual(["self-hosted", "Linux", "X64", "gpu", "xl"].map((l) => (process.arch === "arm64" && l === "X64" ? "ARM64" : l)));

    const job = await client.enqueueJob({ name: "on-configured", labels: ["xl"], script: "true" });
    const ran = await run(root, []);
    expect(ran.code).toBe(0);
    expect(ran.stdout).toContain("Job on-configured completed with result: Succeeded");
    expect((await client.job(job.id)).runner_name).toBe(name);
  });

  test("token fetched with --pat; remove with a remove token", async () => {
    const root = runnerDir();
    const name = uniqueName("pat");
    const added = await config(root, ["--url", `${sim.url}/acme`, "--pat", sim.pat, "--name", name, "--unattended"]);
    expect(added.code).toBe(0);
    expect((await client.state()).runners.find((r) => r.name === name)).toMatchObject({ scope: "orgs/acme", ephemeral: false });
    const removeToken = (await api("POST", "/orgs/acme/actions/runners/remove-token")).data.token;
    const removed = await config(root, ["remove", "--token", removeToken]);
    expect(removed.stderr).toBe("");
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain("√ Runner removed successfully\n√ Removed .credentials\n√ Removed .runner\n");
    expect((await client.state()).runners.find((r) => r.name === name)).toBeUndefined();
    expect(existsSync(join(root, ".runner"))).toBe(false);
  });

  test("errors: bad token, duplicate name, unknown group, already configured", async () => {
    const root = runnerDir();
    const url = `${sim.url}/acme/app`;
    const badToken = await config(root, ["--url", url, "--token", "NOPE", "--unattended"]);
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toStartWith(`Http response code: NotFound from 'POST ${sim.url}/api/v3/actions/runner-registration'\n`);

    const wrongScope = await config(root, ["--url", `${sim.url}/acme`, "--token", await registrationToken(), "--unattended"]);
    expect(wrongScope.stderr).toStartWith("Http response code: NotFound");

    const groupless = await config(root, ["--url", url, "--token", await registrationToken(), "--runnergroup", "gpus", "--unattended"]);
    expect(groupless.code).toBe(1);
    expect(groupless.stderr).toBe('Could not find any self-hosted runner group named "gpus".\n');

    const name = uniqueName("twice");
    expect((await config(root, ["--url", url, "--token", await registrationToken(), "--name", name, "--unattended"])).code).toBe(0);
    const again = await config(root, ["--url", url, "--token", await registrationToken(), "--name", name, "--unattended"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^Cannot configure the runner because it is already configured/);

    rmSync(join(root, ".runner"));
    const dup = await config(root, ["--url", url, "--token", await registrationToken(), "--name", name, "--unattended"]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toBe(`A runner exists with the same name ${name}.\n`);
    const replaced = await config(root, ["--url", url, "--token", await registrationToken(), "--name", name, "--unattended", "--replace"]);
    expect(replaced.code).toBe(0);
    expect(replaced.stdout).toContain("√ Successfully replaced the runner\n");
    expect((await client.state()).runners.filter((r) => r.name === name)).toHaveLength(1);

    const unknownFlag = await config(root, ["--bogus"]);
    expect(unknownFlag.code).toBe(1);
    expect(unknownFlag.stderr).toMatch(/^Unrecognized command-line input arguments: '--bogus'/);
  });
});
