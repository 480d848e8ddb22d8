// What `install` does on a host, run against a fake `launchctl` (the process
// boundary; tests/fixtures/launchd/launchctl) that, like the real one, returns
// from bootout before the job is gone and fails a bootstrap while it is loaded.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { build } from "plist";
import { join } from "node:path";
import { loadConfig } from "../lib/config/index.ts";
import { DrainTimeoutError, LaunchctlError, printDomainArgv, runLaunchctl, waitUntilGone } from "../lib/host/launchd/launchctl.ts";
import { MIN_TART_VERSION, TartVersionError } from "../lib/vm/tart-version.ts";
import { renderAgents } from "../lib/host/launchd/render.ts";
import {
  agentParams, checkGuiSession, checkTart, checkTartVersion, executeStep, installPlan, NeedsRootError, NoGuiSessionError, removePlan, type InstallOptions, type Step,
} from "../lib/host/launchd/install.ts";
import { agentsCheck } from "../lib/host/doctor/host.ts";
import { makeHost } from "./fixtures/launchd/host.ts";

const uid = 501;
let dir: string;
let state: string;
const savedPath = process.env.PATH;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "install-host-"));
  process.env.PATH = `${join(import.meta.dir, "fixtures", "launchd")}:${savedPath}`;
});
afterAll(() => {
  process.env.PATH = savedPath;
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  state = mkdtempSync(join(dir, "launchd-"));
  mkdirSync(join(state, "loaded"));
  process.env.FAKE_LAUNCHD = state;
  process.env.FAKE_EXIT_DELAY = "0.3";
});

const loaded = () => readdirSync(join(state, "loaded")).sort();
const calls = () => readFileSync(join(state, "calls.log"), "utf8").trim().split("\n");
const lines: string[] = [];
const say = (l: string) => lines.push(l);

async function execute(steps: Step[]) {
  for (const step of steps) await executeStep(step, uid, runLaunchctl, say);
}

function host(name: string, opts: Parameters<typeof makeHost>[1] = {}): InstallOptions & Omit<ReturnType<typeof makeHost>, "config"> {
  const h = makeHost(join(dir, name), opts);
  const daemonsDir = join(h.agentsDir, "..", "LaunchDaemons"); // /Library/LaunchDaemons is always there
  mkdirSync(daemonsDir, { recursive: true });
  return { ...h, config: loadConfig({ path: h.config }), binDir: h.binDir, agentsDir: h.agentsDir, daemonsDir, uid, user: { name: "ci", home: "/Users/ci" } };
}

describe("install", () => {
  test("replaces a loaded agent only after it is gone, and unloads an agent no longer wanted", async () => {
    const h = host("replace", { slots: 1 });
    writeFileSync(join(state, "loaded", "dev.macos-runner.slot.1"), "old");
    writeFileSync(join(state, "loaded", "dev.macos-runner.slot.2"), "old");
    mkdirSync(h.agentsDir, { recursive: true });
    const agents = renderAgents(agentParams(h));
    writeFileSync(join(h.agentsDir, "dev.macos-runner.slot.2.plist"), renderAgents({ ...agentParams(h), slots: 2 })[1]!.xml);

    await execute(installPlan(h, agents));

    // The fake refuses a bootstrap while the label is loaded (EIO), so success proves the wait.
    expect(loaded()).toEqual(["dev.macos-runner.slot.1"]);
    expect(readFileSync(join(state, "loaded", "dev.macos-runner.slot.1"), "utf8")).toBe(agents[0]!.xml);
    expect(readdirSync(h.agentsDir)).toEqual(["dev.macos-runner.slot.1.plist"]);
    expect(readFileSync(join(h.agentsDir, "dev.macos-runner.slot.1.plist"), "utf8")).toBe(agents[0]!.xml);
    expect(existsSync(h.logDir) && existsSync(h.stateDir)).toBe(true);
    const c = calls();
    expect(c.indexOf(`bootout gui/${uid}/dev.macos-runner.slot.1`)).toBeLessThan(c.indexOf(`bootstrap gui/${uid} ${join(h.agentsDir, "dev.macos-runner.slot.1.plist")}`));
    expect(lines).toContain("dev.macos-runner.slot.1: stopped");
  });

  test("a refused bootstrap is an error naming the domain and launchctl's reason", async () => {
    const h = host("refused", { slots: 1 });
    writeFileSync(join(state, "refuse-bootstrap"), "");
    const err = await execute(installPlan(h, renderAgents(agentParams(h)))).catch((e) => e);
    expect(err).toBeInstanceOf(LaunchctlError);
    expect(err.exitCode).toBe(1);
    expect(err.message).toContain(`launchctl bootstrap gui/${uid} ${join(h.agentsDir, "dev.macos-runner.slot.1.plist")} failed: Bootstrap failed: 125`);
  });
});

describe("the pull daemon", () => {
  const PULL = "dev.macos-runner.pull";

  test("loaded as root in the system domain and run as the user; a pull agent of an earlier release is unloaded and its plist removed; unchanged, it needs no root again", async () => {
    const h = host("daemon", { slots: 1, binaries: ["loop", "pull"] });
    mkdirSync(h.agentsDir, { recursive: true });
    const oldAgent = build({ Label: PULL, ProgramArguments: [join(h.binDir, "pull")], LimitLoadToSessionType: "Aqua", ExitTimeOut: 60 });
    writeFileSync(join(state, "loaded", PULL), oldAgent);
    writeFileSync(join(h.agentsDir, `${PULL}.plist`), oldAgent);
    const agents = renderAgents(agentParams(h));
    const daemon = agents.find((a) => a.domain === "system")!;
    expect(daemon.plist.UserName).toBe("ci");
    expect(daemon.plist.EnvironmentVariables?.HOME).toBe("/Users/ci");
    expect(daemon.plist.LimitLoadToSessionType).toBeUndefined();

    await execute(installPlan(h, agents));

    expect(loaded()).toEqual(["dev.macos-runner.slot.1", `system.${PULL}`]);
    expect(readFileSync(join(h.daemonsDir, `${PULL}.plist`), "utf8")).toBe(daemon.xml);
    expect(readdirSync(h.agentsDir)).toEqual(["dev.macos-runner.slot.1.plist"]);
    const c = calls();
    expect(c).toContain(`bootout gui/${uid}/${PULL}`);
    expect(c).toContain(`sudo -n launchctl bootstrap system ${join(h.daemonsDir, `${PULL}.plist`)}`);
    expect(c.filter((l) => l.startsWith("sudo ")).every((l) => l.startsWith("sudo -n "))).toBe(true);

    // The playbook puts the daemon in place as root first; install then needs no sudo for it.
    writeFileSync(join(state, "no-sudo"), "");
    const before = calls().length;
    await execute(installPlan(h, renderAgents(agentParams(h))));
    expect(calls().slice(before).filter((l) => l.startsWith("sudo") || l.includes("system ") || l.startsWith(`bootout system`))).toEqual([]);
    expect(lines).toContain(`${PULL}: the daemon in ${join(h.daemonsDir, `${PULL}.plist`)} is up to date and loaded`);
    expect(loaded()).toEqual(["dev.macos-runner.slot.1", `system.${PULL}`]);
  });

  test("a daemon to change and sudo wanting a password: exit 69 saying to run sudo -v, and nothing else changed", async () => {
    const h = host("daemon-no-sudo", { slots: 1, binaries: ["loop", "pull"] });
    writeFileSync(join(state, "loaded", "dev.macos-runner.slot.1"), "running");
    writeFileSync(join(state, "no-sudo"), "");
    const err = await execute(installPlan(h, renderAgents(agentParams(h)))).catch((e) => e);
    expect(err).toBeInstanceOf(NeedsRootError);
    expect(err.exitCode).toBe(69);
    expect(err.message).toContain("run 'sudo -v' in this terminal first, then install again");
    expect(err.message).toContain("sudo: a password is required");
    expect(loaded()).toEqual(["dev.macos-runner.slot.1"]);
    expect(readdirSync(h.agentsDir)).toEqual([]);
    expect(readdirSync(h.daemonsDir)).toEqual([]);
  });

  test("install --remove takes it out as root; without root it stays, with a warning saying how", async () => {
    const h = host("daemon-remove", { slots: 1, binaries: ["loop", "pull"] });
    await execute(installPlan(h, renderAgents(agentParams(h))));
    writeFileSync(join(state, "no-sudo"), "");
    await execute(removePlan(h));
    expect(loaded()).toEqual([`system.${PULL}`]);
    expect(lines.some((l) => l.startsWith(`warning: the pull daemon stays loaded`) && l.includes(`sudo launchctl bootout system/${PULL}`))).toBe(true);
    rmSync(join(state, "no-sudo"));
    await execute(removePlan(h));
    expect(loaded()).toEqual([]);
    expect(readdirSync(h.daemonsDir)).toEqual([]);
  });
});

describe("doctor's pull-daemon check", () => {
  test("a pull agent of an earlier release still in the GUI session: WARN saying install makes it a daemon", async () => {
    const h = host("doctor-pull", { slots: 1 });
    writeFileSync(join(state, "loaded", "dev.macos-runner.slot.1"), "");
    const ctx = { config: h.config, configPath: h.config.file, platform: "darwin" as const, uid, env: {}, run: runLaunchctl, host: "h", timeoutMs: 5_000 };
    const [, none] = await agentsCheck(ctx);
    expect(none).toMatchObject({ check: "pull-daemon", status: "SKIP" }); // no /Library/LaunchDaemons/dev.macos-runner.pull.plist here
    writeFileSync(join(state, "loaded", "dev.macos-runner.pull"), "");
    const [agents, old] = await agentsCheck(ctx);
    expect(agents).toMatchObject({ check: "launchd-agents", status: "PASS" });
    expect(old).toMatchObject({ check: "pull-daemon", status: "WARN" });
    expect(old!.found).toContain("a registry on this host's LAN needs the Local Network grant");
    expect(old!.fix).toContain("run install again");
  });
});

describe("install --remove", () => {
  test("drains every agent, then runs cleanup per slot, then removes the plists", async () => {
    const h = host("remove", { binaries: ["loop", "cleanup"] });
    const record = join(dir, "cleanup-calls");
    // cleanup must run after the slot agents are gone.
    writeFileSync(join(h.binDir, "cleanup"), `#!/bin/sh\nls "${join(state, "loaded")}" | wc -l | tr -d ' ' >> "${record}"\necho "$*" >> "${record}"\n`);
    chmodSync(join(h.binDir, "cleanup"), 0o755);
    await execute(installPlan(h, renderAgents(agentParams(h))));
    expect(loaded()).toEqual(["dev.macos-runner.slot.1", "dev.macos-runner.slot.2"]);

    await execute(removePlan(h));

    expect(loaded()).toEqual([]);
    expect(readdirSync(h.agentsDir)).toEqual([]);
    expect(readFileSync(record, "utf8").trim().split("\n")).toEqual([
      "0",
      `--slot 1 --config ${h.config.file} --golden`,
      "0",
      `--slot 2 --config ${h.config.file} --golden`,
    ]);
  });

  test("an agent that does not go away in time is an error saying what to check", async () => {
    writeFileSync(join(state, "loaded", "dev.macos-runner.slot.1"), "");
    const err = await waitUntilGone(runLaunchctl, uid, "dev.macos-runner.slot.1", 300).catch((e) => e);
    expect(err).toBeInstanceOf(DrainTimeoutError);
    expect(err.exitCode).toBe(75);
    expect(err.message).toContain(`gui/${uid}/dev.macos-runner.slot.1 is still loaded`);
  });
});

describe("host checks", () => {
  test("no GUI session: exit 69, saying to enable auto-login", async () => {
    writeFileSync(join(state, "no-gui"), "");
    const err = await checkGuiSession(runLaunchctl, uid).catch((e) => e);
    expect(err).toBeInstanceOf(NoGuiSessionError);
    expect(err.exitCode).toBe(69);
    expect(err.message).toContain("Enable automatic login for this user");
    rmSync(join(state, "no-gui"));
    expect(await checkGuiSession(runLaunchctl, uid)).toBeUndefined();
  });

  test("a greeting from the user's BASH_ENV or ENV file does not reach what launchctl answers", async () => {
    // launchctl as a bash script (bash reads $BASH_ENV before it runs one), and
    // shell start-up files that print on both streams, as a careless .bashrc does.
    const bin = join(dir, "bash-launchctl");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "launchctl"), `#!/usr/bin/env bash\nexec ${join(import.meta.dir, "fixtures", "launchd", "launchctl")} "$@"\n`);
    chmodSync(join(bin, "launchctl"), 0o755);
    const greeting = join(dir, "greeting.sh");
    writeFileSync(greeting, "echo 'Welcome back!'\necho 'Welcome back!' >&2\n");
    const saved = { PATH: process.env.PATH, BASH_ENV: process.env.BASH_ENV, ENV: process.env.ENV };
    Object.assign(process.env, { PATH: `${bin}:${saved.PATH}`, BASH_ENV: greeting, ENV: greeting });
    try {
      expect(await runLaunchctl(printDomainArgv(uid))).toEqual({ code: 0, stdout: "", stderr: "", timedOut: false });
      writeFileSync(join(state, "no-gui"), "");
      const err = await checkGuiSession(runLaunchctl, uid).catch((e) => e);
      expect(err).toBeInstanceOf(NoGuiSessionError);
      expect(err.message).toContain(`('launchctl print gui/${uid}' failed: Bad request.)`);
      expect(calls()).toEqual([`print gui/${uid}`, `print gui/${uid}`]);
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  test("tart is looked up where the agents will look", () => {
    const bin = join(dir, "tartbin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, "tart"), "#!/bin/sh\n");
    chmodSync(join(bin, "tart"), 0o755);
    expect(checkTart("tart", `/nonexistent:${bin}`)).toBe(join(bin, "tart"));
    expect(checkTart(join(bin, "tart"), "/nonexistent")).toBe(join(bin, "tart"));
    expect(() => checkTart("tart", "/nonexistent")).toThrow(/tart not found at "tart" in the agents' PATH \(\/nonexistent\): install it \(brew install cirruslabs\/cli\/tart\)/);
    const err = (() => {
      try {
        checkTart(join(bin, "missing"), "/x");
      } catch (e) {
        return e as { exitCode: number; message: string };
      }
    })();
    expect(err?.exitCode).toBe(69);
    expect(err?.message).toContain(`tart not found at "${join(bin, "missing")}"`);
  });
  test(`tart older than ${MIN_TART_VERSION}, or a version that is not one: refused with exit 69, naming what it saw and the upgrade`, async () => {
    // The simulated tart, its --version set through its settings file.
    const tart = join(import.meta.dir, "..", "sim", "bin", "tart");
    const settings = join(dir, "sim-tart.json");
    const saved = process.env.SIM_TART_CONFIG;
    process.env.SIM_TART_CONFIG = settings;
    const refusal = (version: string) => {
      writeFileSync(settings, JSON.stringify({ version }));
      return checkTartVersion(runLaunchctl, tart).then(
        () => undefined,
        (e: TartVersionError) => ({ type: e.constructor.name, code: e.exitCode, message: e.message }),
      );
    };
    try {
      writeFileSync(settings, "{}");
      expect(await checkTartVersion(runLaunchctl, tart)).toBe("2.35.0");
      expect(await refusal(MIN_TART_VERSION)).toBeUndefined();
      expect(await refusal("2.32.1")).toEqual({
        type: "TartVersionError",
        code: 69,
        message: `tart 2.32.1 is older than ${MIN_TART_VERSION}, the lowest supported: older tart spins a CPU core at 100 % for the whole job once \`tart exec -i\` has read its piped stdin (tart issue #1280) (${tart}): upgrade tart to ${MIN_TART_VERSION} or later (brew upgrade cirruslabs/cli/tart), then run install again`,
      });
      expect((await refusal("2.9.0"))?.message).toStartWith(`tart 2.9.0 is older than ${MIN_TART_VERSION}`);
      expect((await refusal("SNAPSHOT"))?.message).toStartWith(`tart --version printed "SNAPSHOT", not a release version (X.Y.Z) to compare with ${MIN_TART_VERSION}, the lowest supported (${tart}): upgrade tart`);
      expect(await refusal("10.0.0")).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.SIM_TART_CONFIG;
      else process.env.SIM_TART_CONFIG = saved;
    }
  });
});
