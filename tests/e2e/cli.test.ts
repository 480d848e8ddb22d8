// The binaries as an operator meets them: --help exit tables that match the
// one exit table, bad input answered in one line with the documented code,
// the step commands chained by hand, the slot lock honoured by every step,
// `loop` from source on a terminal, and no secret in argv, logs or files.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { EXIT_TABLE, exitCode, type ExitKind } from "../../lib/core/errors.ts";
import type { World } from "../../sim/world.ts";
import { ROOT } from "../helpers/e2e.ts";
import { parse, stringify } from "yaml";
import { enqueue, exitOf, fileWorld, gate, github, job, loopBinary, slots, slotState, start, until, vms, type Slots } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

/** The test's config with a change, written beside it; returns its path. */
function variant(s: Slots, name: string, change: (c: any) => void): string {
  const c = parse(readFileSync(s.path, "utf8"));
  change(c);
  const path = join(s.stateDir, "..", `${name}.yml`);
  writeFileSync(path, stringify(c));
  return path;
}

// Every scripts/*.ts, and the registry's retention (registry/retention/main.ts).
const COMMANDS = [...readdirSync(join(ROOT, "scripts")).filter((f) => f.endsWith(".ts")).map((f) => f.replace(/\.ts$/, "")), "retention"];

// The tests that serve a job first: they run beside the quick ones, not after them.
describe("the steps by hand", () => {
  test.concurrent("clone, boot, token | ssh-run, cleanup chained by hand serve one job (the README's replay)", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const j = await enqueue(s, "by-hand");
    const step = (cmd: string, ...args: string[]) => start(world, cmd, ["--slot", "1", "--config", s.path, ...args], s.host.env).done;
    const cloned = await step("clone");
    expect(cloned.code).toBe(0);
    const vm = cloned.stdout.trim();
    const booted = await step("boot", "--vm", vm);
    expect(booted.code).toBe(0);
    const ip = booted.stdout.trim();
    const tokened = await step("token", "--output", join(s.stateDir, "jit.json"));
    expect(tokened.code).toBe(0);
    const ran = start(world, "ssh-run", ["--slot", "1", "--config", s.path, "--vm", vm, "--ip", ip], s.host.env);
    ran.child.stdin!.end(readFileSync(join(s.stateDir, "jit.json")));
    expect((await ran.done).code).toBe(0);
    expect((await job(s, j.id)).result).toBe("Succeeded");
    expect((await step("cleanup", "--vm", vm)).code).toBe(0);
    expect(vms(s).map((v) => v.name)).not.toContain(vm);
  }, 60_000);

  test.concurrent("cleanup --slot while a loop serves the slot: exit 75, the job untouched", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const g = gate(s, "protected");
    const j = await enqueue(s, "protected", g.script("echo ok"));
    const run = loopBinary(s);
    await until("the job running", async () => (await job(s, j.id)).status === "in_progress");
    const r = await start(world, "cleanup", ["--slot", "1", "--config", s.path], s.host.env).done;
    expect(r.code).toBe(exitCode("tempfail"));
    expect(r.stderr).toContain("in use by another process");
    g.open();
    await exitOf(run, 0);
    expect((await job(s, j.id)).result).toBe("Succeeded");
  }, 60_000);

  test.concurrent("cleanup refuses a VM that is not this slot's: exit 64, naming it, untouched", async () => {
    const s = slots(world);
    const r = await start(world, "cleanup", ["--slot", "1", "--config", s.path, "--vm", "someone-elses-vm"], s.host.env).done;
    expect(r.code).toBe(exitCode("usage"));
    expect(r.stderr).toContain("someone-elses-vm");
  });

  test.concurrent("./scripts/loop.ts from source on a terminal: one cycle, readable text lines", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const j = await enqueue(s, "from-source");
    const env = { ...s.env, PATH: `${join(ROOT, "node_modules", ".bin")}:${s.env.PATH}` };
    // `script` gives the process a terminal, as an operator's shell would.
    const child = spawn("script", ["-qec", `./scripts/loop.ts --slot 1 --config ${s.path}`, "/dev/null"], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    const code = await new Promise((r) => child.on("close", r));
    expect(code).toBe(0);
    expect((await job(s, j.id)).result).toBe("Succeeded");
    expect(out.split(/\r?\n/).some((l) => l.startsWith("{"))).toBe(false);
    expect(out).toMatch(new RegExp(`INFO\\s+cycle\\.done slot=1 vm=${s.prefix}-`));
  }, 60_000);
});

describe("secrets and the shell", () => {
  test.concurrent("no installation token, JIT config, key or password in argv, logs or state files", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const g = gate(s, "secretive");
    const j = await enqueue(s, "secretive", g.script("echo done"));
    const run = loopBinary(s);
    await until("the job running", async () => (await job(s, j.id)).status === "in_progress");
    const vm = slotState(s)!.vm as string;
    const guest = join(s.host.tartHome, "vms", vm, "disk.img", "Users", "admin", "actions-runner");
    const runnerSecret = (JSON.parse(readFileSync(join(guest, ".credentials"), "utf8")) as { data: { token: string } }).data.token;
    const installationToken = /ghs_[A-Za-z0-9_]+/.exec(readFileSync(join(s.stateDir, "github-token-cache.json"), "utf8"))![0];
    const pemBody = readFileSync(world.appKeyPath, "utf8").split("\n")[1]!;
    const secrets = [runnerSecret, installationToken, pemBody, world.registry!.password];
    const argv = readdirSync("/proc").filter((p) => /^\d+$/.test(p)).map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ");
      } catch {
        return "";
      }
    });
    expect(argv.some((a) => a.includes(" exec -i ") && a.includes("actions-runner"))).toBe(true); // the job's tart exec is in the table
    for (const secret of secrets) expect(argv.filter((a) => a.includes(secret))).toEqual([]);
    // No JIT config of this slot's runners, whole or in part (other test files' processes share the table;
    // every JIT config begins alike, so the parts looked for are its middle and its end).
    const jitConfigs = (await world.gh.jitConfigs()).filter((c) => c.runner_name.startsWith(`${s.prefix}-`)).map((c) => c.encoded_jit_config);
    expect(jitConfigs.length).toBeGreaterThan(0);
    expect(argv.filter((a) => jitConfigs.some((c) => a.includes(c.slice(c.length / 2, c.length / 2 + 64)) || a.includes(c.slice(-64))))).toEqual([]);
    g.open();
    const r = await run.done;
    expect(r.code).toBe(0);
    const files = [...readdirSync(s.logDir).map((f) => join(s.logDir, f)), join(s.stateDir, "slot-1.json")];
    const written = files.map((f) => readFileSync(f, "utf8")).join("\n") + r.stderr + r.stdout;
    for (const secret of secrets) expect(written.includes(secret)).toBe(false);
    expect(written).not.toMatch(/[A-Za-z0-9+/=]{200,}/);
  }, 60_000);

  test.concurrent("a shell start-up file that prints a greeting ($BASH_ENV, $ENV) changes nothing: the job is served", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const greeting = join(s.stateDir, "..", "greeting.sh");
    writeFileSync(greeting, 'echo "Welcome back!"; echo "Have a nice day" >&2\n');
    const j = await enqueue(s, "greeted");
    const run = loopBinary(s, 1, { BASH_ENV: greeting, ENV: greeting });
    await until("served", async () => (await job(s, j.id)).result === "Succeeded", 30_000);
    run.child.kill("SIGTERM");
    await exitOf(run, 0);
    expect((await github(s)).runners).toEqual([]);
  }, 60_000);

  test.concurrent("tart printing unexpected text is a clear bad-input answer, not a crash", async () => {
    const s = slots(world, {}, { boot_ms: 150 });
    const wrapper = join(s.stateDir, "..", "chatty-tart");
    writeFileSync(wrapper, `#!/bin/sh\nif [ "$1" = list ]; then echo "tart 9.9 is available, upgrade now!"; exit 0; fi\nexec ${s.config.host.tartPath} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const path = variant(s, "chatty-tart", (c) => (c.host.tart_path = wrapper));
    const r = await start(world, "cleanup", ["--slot", "1", "--config", path, "--sweep"], s.host.env).done;
    expect(r.code).toBe(exitCode("bad-input"));
    expect(r.stderr).toContain("tart list printed something that is not its JSON listing");
    expect(r.stderr).not.toContain("    at ");
  }, 30_000);
});

describe("--help", () => {
  test.concurrent.each(COMMANDS)("%s: its exit table is the project's (code, kind), an unknown flag exits 64", async (cmd) => {
    const help = await start(world, cmd, ["--help"]).done;
    expect(help.code).toBe(0);
    const rows = help.stdout.split("Exit codes:")[1]!.trim().split("\n").map((l) => l.trim().split(/\s+/).slice(0, 2));
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const [code, kind] of rows) expect(`${kind} ${EXIT_TABLE[kind as ExitKind]?.code}`).toBe(`${kind} ${code}`);
    const bad = await start(world, cmd, ["--no-such-flag"]).done;
    expect(bad.code).toBe(exitCode("usage"));
  });
});

describe("bad input", () => {
  test.concurrent("a bad config: exit 78, every problem with key path and line, nothing created", async () => {
    const dir = join(world.dir, "bad-config");
    mkdirSync(dir, { recursive: true });
    const path = join(dir, "config.yml");
    writeFileSync(path, `github:\n  url: https://github.com/acme\n  app: { id: -3 }\nrunner:\n  lables: [x]\nhost:\n  state_dir: ${join(dir, "state")}\n`);
    const r = await start(world, "loop", ["--slot", "1", "--config", path]).done;
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("github.app.id");
    expect(r.stderr).toContain("did you mean labels");
    expect(existsSync(join(dir, "state"))).toBe(false);
  });

  test.concurrent("a missing key file: exit 78 naming the file", async () => {
    const s = slots(world);
    const path = variant(s, "missing-key", (c) => (c.github.app.private_key_path = join(world.dir, "nope.pem")));
    const r = await start(world, "loop", ["--slot", "1", "--config", path]).done;
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("nope.pem");
  });

  test.concurrent.each(["0x1", "1e0", " 1", "3"])("--slot %p is a usage error (exit 64)", async (slot) => {
    const s = slots(world);
    const r = await start(world, "loop", ["--slot", slot, "--config", s.path]).done;
    expect(r.code).toBe(exitCode("usage"));
  });

  test.concurrent("a repeated --slot is a usage error (exit 64)", async () => {
    const s = slots(world);
    const r = await start(world, "loop", ["--slot", "1", "--slot", "2", "--config", s.path]).done;
    expect(r.code).toBe(exitCode("usage"));
    expect(r.stderr).toContain("--slot given more than once");
  });

  test.concurrent("host.state_dir that is a file: exit 74 in one line, no stack trace", async () => {
    const file = join(world.dir, "state-is-a-file");
    writeFileSync(file, "");
    const s = slots(world, { host: { state_dir: file } });
    const r = await start(world, "loop", ["--slot", "1", "--config", s.path], s.host.env).done;
    expect(r.code).toBe(exitCode("state-io"));
    const lines = r.stderr.trim().split("\n");
    expect(lines.length).toBe(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "error", event: "fatal", kind: "state-io" });
    expect(r.stderr).not.toContain("    at ");
  });

  test.concurrent("a fatal error is one redacted JSON line off a terminal", async () => {
    const token = `ghp_${"A1b2C3d4".repeat(5)}`;
    const s = slots(world);
    // A token pasted where a name belongs: the error quotes the value, the redactor removes it.
    const path = variant(s, "secret-in-config", (c) => (c.runner.name_prefix = token));
    const r = await start(world, "loop", ["--slot", "1", "--config", path]).done;
    expect(r.code).toBe(78);
    const lines = r.stderr.trim().split("\n");
    expect(lines.length).toBe(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "error", event: "fatal", kind: "config" });
    expect(r.stderr).toContain("runner.name_prefix");
    expect(r.stderr).not.toContain(token);
  });

  test.concurrent("token --output: a new file is made 0600; an existing file others can read is refused and kept", async () => {
    const s = slots(world);
    const fresh = join(s.stateDir, "..", "jit.json");
    expect((await start(world, "token", ["--slot", "1", "--config", s.path, "--output", fresh]).done).code).toBe(0);
    expect(statSync(fresh).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(fresh, "utf8")).encoded_jit_config).toBeTruthy();
    const open = join(s.stateDir, "..", "open.json");
    writeFileSync(open, "keep me");
    chmodSync(open, 0o644);
    const r = await start(world, "token", ["--slot", "1", "--config", s.path, "--output", open]).done;
    expect(r.code).toBe(exitCode("usage"));
    expect(r.stderr).toContain("readable by others");
    expect(readFileSync(open, "utf8")).toBe("keep me");
  });
});
