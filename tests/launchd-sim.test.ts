// The simulated launchd (sim/launchd.ts), driven with tiny shell programs:
// respawn and throttle, KeepAlive forms, StartInterval, bootout's SIGTERM then
// SIGKILL, process-group cleanup, environment and appended log files.
import { afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "plist";
import { ensureCompiledLaunchctl } from "../sim/compiled.ts";
import { startAgent, type Agent, type AgentOptions } from "../sim/launchd.ts";

let dir: string;
const agents: Agent[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sim-launchd-"));
});
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.bootout()));
  rmSync(dir, { recursive: true, force: true });
});

function agent(keys: Record<string, unknown>, script: string, opts: AgentOptions = {}): Agent {
  const path = join(dir, "agent.plist");
  writeFileSync(path, build({ Label: "test.agent", ProgramArguments: ["/bin/sh", "-c", script], WorkingDirectory: dir, ...keys } as never));
  const a = startAgent(path, opts);
  agents.push(a);
  return a;
}

async function until(what: string, cond: () => boolean, timeoutMs = 5_000, everyMs = 10): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

// A zombie (killed, not yet reaped by init) counts as gone.
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return true; // no /proc (macOS): kill(0) is the answer
  }
};

// An interval with nothing expected in it: the only way to see that a respawn does not happen.
const quietPeriod = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("respawn", () => {
  test("KeepAlive respawns on every exit, never sooner than ThrottleInterval after the last spawn", async () => {
    const spawnedAt: number[] = [];
    const log = join(dir, "out.log");
    const a = agent({ RunAtLoad: true, KeepAlive: true, ThrottleInterval: 2, StandardOutPath: log }, "echo run", {
      timeScale: 0.1, // 2 s -> 200 ms
      onSpawn: () => spawnedAt.push(Date.now()),
    });
    await until("4 spawns", () => a.spawns >= 4);
    const gaps = spawnedAt.slice(1).map((t, i) => t - spawnedAt[i]!);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(199);
    // The job exits at once, so the throttle alone sets the pace.
    for (const gap of gaps) expect(gap).toBeLessThan(1_000);
  });

  test("a job that runs longer than ThrottleInterval is respawned at once", async () => {
    const spawnedAt: number[] = [];
    // Throttle 500 ms, job 800 ms: the throttle counts from the spawn, so it adds nothing.
    const a = agent({ KeepAlive: true, ThrottleInterval: 5 }, "sleep 0.8", { timeScale: 0.1, onSpawn: () => spawnedAt.push(Date.now()) });
    await until("2 spawns", () => a.spawns >= 2);
    const gap = spawnedAt[1]! - spawnedAt[0]!;
    // Not before the job's exit (a respawn at the throttle would be 500 ms); onSpawn is seen
    // a few ms after the spawn on a loaded machine, so the bound keeps a margin below 800.
    expect(gap).toBeGreaterThanOrEqual(700);
    expect(gap).toBeLessThan(1_200); // counted from the exit it would be 1300 ms or more
  });

  test("KeepAlive false: the job runs once", async () => {
    const exits: (number | null)[] = [];
    const a = agent({ RunAtLoad: true, KeepAlive: false, ThrottleInterval: 1 }, "exit 3", { timeScale: 0.05, onExit: (code) => exits.push(code) });
    await until("the exit", () => exits.length === 1);
    await quietPeriod(300); // six throttle intervals
    expect(a.spawns).toBe(1);
    expect(exits).toEqual([3]);
    expect(a.pid).toBeUndefined();
  });

  test("KeepAlive {SuccessfulExit: false} respawns after a failure, not after success", async () => {
    const counter = join(dir, "count");
    // Fails the first time, succeeds the second.
    const script = `if [ -e ${counter} ]; then exit 0; else touch ${counter}; exit 1; fi`;
    const exits: (number | null)[] = [];
    const a = agent({ KeepAlive: { SuccessfulExit: false }, ThrottleInterval: 1 }, script, { timeScale: 0.05, onExit: (c) => exits.push(c) });
    await until("two exits", () => exits.length === 2);
    await quietPeriod(300);
    expect(exits).toEqual([1, 0]);
    expect(a.spawns).toBe(2);
  });

  test("StartInterval starts an idle job again", async () => {
    const a = agent({ StartInterval: 1, ThrottleInterval: 0 }, "exit 0", { timeScale: 0.1 });
    expect(a.spawns).toBe(0); // neither RunAtLoad nor KeepAlive
    await until("2 interval starts", () => a.spawns >= 2);
  });
});

describe("bootout", () => {
  test("SIGTERM: a job that handles it finishes cleanly", async () => {
    const log = join(dir, "out.log");
    const exits: [number | null, string | null][] = [];
    const a = agent(
      { RunAtLoad: true, KeepAlive: true, ExitTimeOut: 100, StandardOutPath: log },
      "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
      { timeScale: 0.1, onExit: (c, s) => exits.push([c, s]) },
    );
    await until("ready", () => existsSync(log) && readFileSync(log, "utf8").includes("ready"));
    await a.bootout();
    expect(exits).toEqual([[0, null]]);
    expect(readFileSync(log, "utf8")).toContain("got-term");
    expect(a.pid).toBeUndefined();
    expect(a.spawns).toBe(1); // no respawn after bootout
  });

  test("SIGKILL after ExitTimeOut when the job ignores SIGTERM", async () => {
    const log = join(dir, "out.log");
    const exits: [number | null, string | null][] = [];
    const a = agent(
      { RunAtLoad: true, KeepAlive: true, ExitTimeOut: 3, StandardOutPath: log },
      "trap '' TERM; echo ready; while :; do sleep 0.05; done",
      { timeScale: 0.1, onExit: (c, s) => exits.push([c, s]) },
    );
    await until("ready", () => existsSync(log) && readFileSync(log, "utf8").includes("ready"));
    const started = Date.now();
    await a.bootout();
    const took = Date.now() - started;
    expect(exits).toEqual([[null, "SIGKILL"]]);
    expect(took).toBeGreaterThanOrEqual(299); // ExitTimeOut 3 s scaled to 300 ms
    expect(took).toBeLessThan(3_000);
  });

  test("what the job left in its process group is killed when it exits", async () => {
    const pidFile = join(dir, "bg.pid");
    const exits: number[] = [];
    agent({ RunAtLoad: true }, `sleep 30 & echo $! > ${pidFile}; exit 0`, { onExit: (c) => exits.push(c ?? -1) });
    await until("the exit", () => exits.length === 1);
    const bg = Number(readFileSync(pidFile, "utf8"));
    await until("the background sleep to be killed", () => !alive(bg));
  });

  test("AbandonProcessGroup leaves it running", async () => {
    const pidFile = join(dir, "bg.pid");
    const exits: number[] = [];
    agent({ RunAtLoad: true, AbandonProcessGroup: true }, `sleep 30 & echo $! > ${pidFile}; exit 0`, { onExit: (c) => exits.push(c ?? -1) });
    await until("the exit", () => exits.length === 1);
    const bg = Number(readFileSync(pidFile, "utf8"));
    try {
      await quietPeriod(100);
      expect(alive(bg)).toBe(true);
    } finally {
      process.kill(bg, "SIGKILL");
    }
  });
});

describe("environment and logs", () => {
  test("log files are appended to, stdout and stderr to their own paths", async () => {
    const out = join(dir, "out.log");
    const err = join(dir, "err.log");
    writeFileSync(out, "from before\n");
    const count = join(dir, "count");
    // Three runs: the third exits 1, and KeepAlive {SuccessfulExit: true} stops there.
    const script = `echo to-out; echo to-err >&2; n=$(($(cat ${count} 2>/dev/null || echo 0) + 1)); echo $n > ${count}; [ $n -lt 3 ]`;
    const exits: (number | null)[] = [];
    agent({ KeepAlive: { SuccessfulExit: true }, ThrottleInterval: 1, StandardOutPath: out, StandardErrorPath: err }, script, {
      timeScale: 0.05,
      onExit: (code) => exits.push(code),
    });
    await until("3 runs", () => exits.length >= 3);
    expect(exits).toEqual([0, 0, 1]);
    const lines = readFileSync(out, "utf8").trim().split("\n");
    expect(lines).toEqual(["from before", "to-out", "to-out", "to-out"]);
    expect(readFileSync(err, "utf8").trim().split("\n")).toEqual(["to-err", "to-err", "to-err"]);
  });

  test("EnvironmentVariables over the session env, in WorkingDirectory", async () => {
    const out = join(dir, "out.log");
    const exits: number[] = [];
    agent(
      { RunAtLoad: true, StandardOutPath: out, EnvironmentVariables: { CI: "true", SHARED: "from-plist" } },
      'echo "$CI $SESSION $SHARED $(pwd)"',
      { env: { PATH: "/usr/bin:/bin", SESSION: "from-session", SHARED: "from-session" }, onExit: (c) => exits.push(c ?? -1) },
    );
    await until("the exit", () => exits.length === 1);
    expect(readFileSync(out, "utf8").trim()).toBe(`true from-session from-plist ${dir}`);
  });

  test("a missing program counts as a failed run and is throttled", async () => {
    const path = join(dir, "agent.plist");
    writeFileSync(path, build({ Label: "t", ProgramArguments: [join(dir, "nope")], KeepAlive: true, ThrottleInterval: 1 } as never));
    const exits: (number | null)[] = [];
    const a = startAgent(path, { timeScale: 0.05, onExit: (c) => exits.push(c) });
    agents.push(a);
    await until("2 failed runs", () => exits.length >= 2);
    expect(exits.slice(0, 2)).toEqual([127, 127]);
  });

  test("an unreadable plist is refused with its path", () => {
    const path = join(dir, "bad.plist");
    writeFileSync(path, build({ Label: "x" } as never));
    expect(() => startAgent(path)).toThrow(`launchd plist ${path}: ProgramArguments must be a non-empty <array> of <string>`);
  });
});

describe("sim/bin/launchctl (an agent outlives the launchctl call, as under launchd)", () => {
  const launchctl = join(import.meta.dir, "..", "sim", "bin", "launchctl");
  beforeAll(() => void ensureCompiledLaunchctl(), 60_000);
  const ctl = (...args: string[]) => {
    const r = Bun.spawnSync([launchctl, ...args], { env: { ...process.env, SIM_LAUNCHD: join(dir, "launchd") } });
    return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };
  /** On a loaded machine the agent's steps take seconds. */
  const SLOW = 20_000;
  /** Until launchctl answers as asked: each ask is a process, so every 100 ms. */
  const untilCtl = (what: string, cond: () => boolean) => until(what, cond, SLOW, 100);
  const plist = (script: string, keys: Record<string, unknown> = {}) => {
    const path = join(dir, "one-shot.plist");
    writeFileSync(path, build({ Label: "test.one-shot", ProgramArguments: ["/bin/sh", "-c", script], RunAtLoad: true, KeepAlive: false, StandardOutPath: join(dir, "out.log"), ...keys } as never));
    return path;
  };

  test("bootstrap runs it; print shows running, then not running with its exit code; a second bootstrap is EIO; bootout unloads it", async () => {
    writeFileSync(join(dir, "go"), "");
    const path = plist(`echo "$SESSION_VAR"; while [ -e ${join(dir, "go")} ]; do sleep 0.05; done; exit 3`);
    mkdirSync(join(dir, "launchd"), { recursive: true });
    writeFileSync(join(dir, "launchd", "session.json"), JSON.stringify({ PATH: "/usr/bin:/bin", SESSION_VAR: "from-the-session" }));
    expect(ctl("bootstrap", "gui/501", path).code).toBe(0);
    await untilCtl("the job to run", () => ctl("print", "gui/501/test.one-shot").stdout.includes("state = running"));
    expect(ctl("bootstrap", "gui/501", path)).toMatchObject({ code: 5, stderr: "Bootstrap failed: 5: Input/output error\n" });
    rmSync(join(dir, "go"));
    await untilCtl("the job to end", () => ctl("print", "gui/501/test.one-shot").stdout.includes("last exit code = 3"));
    expect(ctl("print", "gui/501/test.one-shot").stdout).toContain("state = not running");
    expect(readFileSync(join(dir, "out.log"), "utf8")).toBe("from-the-session\n");
    expect(ctl("bootout", "gui/501/test.one-shot").code).toBe(0);
    await untilCtl("the label to go", () => ctl("print", "gui/501/test.one-shot").code === 113);
    expect(ctl("bootout", "gui/501/test.one-shot")).toMatchObject({ code: 3, stderr: "Boot-out failed: 3: No such process\n" });
  }, 60_000);

  test("bootout of a running job: SIGTERM, and the label stays loaded until the job is gone", async () => {
    // At SIGTERM the job says so, then ends only when the test lets it: the label must stay loaded until then.
    const release = join(dir, "release");
    const path = plist(`trap 'echo got-term; while [ ! -e ${release} ]; do sleep 0.05; done; exit 0' TERM; while :; do sleep 0.05; done`);
    expect(ctl("bootstrap", "gui/501", path).code).toBe(0);
    await untilCtl("the job to run", () => ctl("print", "gui/501/test.one-shot").stdout.includes("state = running"));
    expect(ctl("bootout", "gui/501/test.one-shot").code).toBe(0);
    await until("the job's SIGTERM", () => readFileSync(join(dir, "out.log"), "utf8").includes("got-term"), SLOW);
    expect(ctl("print", "gui/501/test.one-shot").code).toBe(0); // bootout returned; the job has not ended
    writeFileSync(release, "");
    await untilCtl("the label to go", () => ctl("print", "gui/501/test.one-shot").code === 113);
  }, 60_000);

  test("no GUI session: print of the domain fails (113) and bootstrap fails (125)", () => {
    mkdirSync(join(dir, "launchd"), { recursive: true });
    writeFileSync(join(dir, "launchd", "no-gui"), "");
    expect(ctl("print", "gui/501").code).toBe(113);
    expect(ctl("bootstrap", "gui/501", plist("exit 0"))).toMatchObject({ code: 125, stderr: "Bootstrap failed: 125: Domain does not support specified action\n" });
  }, 30_000);
});
