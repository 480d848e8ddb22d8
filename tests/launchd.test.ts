// Rendering the launchd agents: the plists are parsed back with the real
// `plist` parser and every key that matters is checked.
import { describe, expect, test } from "bun:test";
import { build, parse } from "plist";
import { CLEANUP_MARGIN_S, renderAgents, renderSelftestAgent, type AgentParams } from "../lib/host/launchd/render.ts";
import { PlistInvalidError, readAgentPlist, validateAgentPlist } from "../lib/host/launchd/plist.ts";

const SIX_HOURS_MS = 6 * 3600 * 1000;

const params = (over: Partial<AgentParams> = {}): AgentParams => ({
  binDir: "/usr/local/libexec/macos-runner",
  configPath: "/Users/ci/.config/macos-runner/config.yml",
  slots: 2,
  logDir: "/Users/ci/Library/Logs/macos-runner",
  stateDir: "/Users/ci/Library/Application Support/macos-runner",
  jobTimeoutMs: SIX_HOURS_MS,
  pull: false,
  user: { name: "ci", home: "/Users/ci" },
  ...over,
});

type Dict = Record<string, unknown>;
const parsed = (xml: string) => parse(xml) as Dict;

describe("slot agents", () => {
  test("one slot renders one agent with every key launchd needs", () => {
    const agents = renderAgents(params({ slots: 1 }));
    expect(agents.map((a) => a.label)).toEqual(["dev.macos-runner.slot.1"]);
    expect(agents[0]!.fileName).toBe("dev.macos-runner.slot.1.plist");
    const p = parsed(agents[0]!.xml);
    expect(p).toEqual({
      Label: "dev.macos-runner.slot.1",
      ProgramArguments: ["/usr/local/libexec/macos-runner/loop", "--slot", "1", "--config", "/Users/ci/.config/macos-runner/config.yml"],
      RunAtLoad: true,
      KeepAlive: true,
      ThrottleInterval: 1,
      ExitTimeOut: 6 * 3600 + CLEANUP_MARGIN_S,
      AbandonProcessGroup: false,
      ProcessType: "Interactive",
      LimitLoadToSessionType: "Aqua",
      WorkingDirectory: "/Users/ci/Library/Application Support/macos-runner",
      StandardOutPath: "/Users/ci/Library/Logs/macos-runner/slot-1.log",
      StandardErrorPath: "/Users/ci/Library/Logs/macos-runner/slot-1.log",
      EnvironmentVariables: { PATH: "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", CI: "true" },
    });
    // Integers stay integers in the XML (launchd ignores a <string> ExitTimeOut).
    expect(agents[0]!.xml).toContain(`<integer>${6 * 3600 + CLEANUP_MARGIN_S}</integer>`);
    expect(agents[0]!.xml).not.toContain("{{");
  });

  test("two slots render two agents with their own slot number and log file", () => {
    const agents = renderAgents(params({ slots: 2 }));
    expect(agents.map((a) => a.label)).toEqual(["dev.macos-runner.slot.1", "dev.macos-runner.slot.2"]);
    const second = parsed(agents[1]!.xml);
    expect(second.ProgramArguments).toEqual(["/usr/local/libexec/macos-runner/loop", "--slot", "2", "--config", "/Users/ci/.config/macos-runner/config.yml"]);
    expect(second.StandardOutPath).toBe("/Users/ci/Library/Logs/macos-runner/slot-2.log");
    expect(second.StandardErrorPath).toBe("/Users/ci/Library/Logs/macos-runner/slot-2.log");
  });

  test("ExitTimeOut follows runner.job_timeout, rounded up to whole seconds", () => {
    const [agent] = renderAgents(params({ slots: 1, jobTimeoutMs: 90_500 }));
    expect(parsed(agent!.xml).ExitTimeOut).toBe(91 + CLEANUP_MARGIN_S);
  });

  test("no secret is in the environment", () => {
    for (const agent of renderAgents(params({ pull: true }))) {
      const env = parsed(agent.xml).EnvironmentVariables as Dict;
      expect(Object.keys(env).sort()).toEqual(agent.domain === "system" ? ["CI", "HOME", "PATH"] : ["CI", "PATH"]);
    }
  });

  test("odd paths are XML-escaped and come back unchanged", () => {
    const odd = {
      binDir: "/Users/o'brien/bin & tools/<new>/",
      configPath: "/Users/o'brien/conf \"a&b\".yml",
      logDir: "/Users/o'brien/Library/Logs/R&D",
      stateDir: "/Users/o'brien/Application Support/x<y>",
    };
    const [agent] = renderAgents(params({ slots: 1, ...odd }));
    expect(agent!.xml).toContain("bin &amp; tools/&lt;new&gt;/loop");
    expect(agent!.xml).not.toMatch(/&(?!amp;|lt;|gt;|quot;|apos;)/);
    const p = parsed(agent!.xml);
    expect(p.ProgramArguments).toEqual(["/Users/o'brien/bin & tools/<new>/loop", "--slot", "1", "--config", odd.configPath]);
    expect(p.StandardOutPath).toBe("/Users/o'brien/Library/Logs/R&D/slot-1.log");
    expect(p.WorkingDirectory).toBe(odd.stateDir);
  });

  test("a relative path is refused, naming the key", () => {
    expect(() => renderAgents(params({ logDir: "logs" }))).toThrow(PlistInvalidError);
    expect(() => renderAgents(params({ logDir: "logs" }))).toThrow(/StandardOutPath must be an absolute path, got 'logs\/slot-1.log'/);
    expect(() => renderAgents(params({ configPath: "~/config.yml" }))).toThrow(/--config argument must be an absolute path/);
  });

  test("a third slot is refused (Apple's two-VM licence)", () => {
    expect(() => renderAgents(params({ slots: 3 }))).toThrow(/unexpected Label 'dev.macos-runner.slot.3'/);
  });
});

describe("pull daemon", () => {
  test("rendered only when asked, on an interval, never kept alive; a daemon run as the user, in no session", () => {
    expect(renderAgents(params({ pull: false })).map((a) => a.label)).not.toContain("dev.macos-runner.pull");
    const pull = renderAgents(params({ pull: true })).find((a) => a.label === "dev.macos-runner.pull")!;
    const p = parsed(pull.xml);
    expect(p.ProgramArguments).toEqual(["/usr/local/libexec/macos-runner/pull", "--config", "/Users/ci/.config/macos-runner/config.yml"]);
    expect(p.KeepAlive).toBe(false);
    expect(p.RunAtLoad).toBe(true);
    expect(p.StartInterval).toBe(300);
    expect(parsed(renderAgents(params({ pull: true, pullIntervalS: 900 })).at(-1)!.xml).StartInterval).toBe(900);
    expect(pull.domain).toBe("system");
    expect(p.UserName).toBe("ci");
    expect((p.EnvironmentVariables as Dict).HOME).toBe("/Users/ci");
    expect(p.LimitLoadToSessionType).toBeUndefined();
    expect(p.StandardOutPath).toBe("/Users/ci/Library/Logs/macos-runner/pull.log");
    const { user: _, ...noUser } = params({ pull: true });
    expect(() => renderAgents(noUser)).toThrow(/the pull daemon needs the user it runs as/);
  });

  test("a pull daemon that would run as root or wait for a GUI session is refused; a slot agent must keep its session", () => {
    const pull = parsed(renderAgents(params({ pull: true })).at(-1)!.xml);
    const { UserName: _, ...asRoot } = pull;
    expect(() => validateAgentPlist(build(asRoot as never), "p.plist")).toThrow(/UserName is required \(the pull daemon runs as the runner user, never as root\)/);
    expect(() => validateAgentPlist(build({ ...pull, LimitLoadToSessionType: "Aqua" } as never), "p.plist")).toThrow(/LimitLoadToSessionType must be absent/);
    const slot = parsed(renderAgents(params({ slots: 1 }))[0]!.xml);
    const { LimitLoadToSessionType: __, ...sessionless } = slot;
    expect(() => validateAgentPlist(build(sessionless as never), "s.plist")).toThrow(/LimitLoadToSessionType must be Aqua/);
    expect(() => validateAgentPlist(build({ ...slot, UserName: "root" } as never), "s.plist")).toThrow(/UserName must be absent/);
  });
});

describe("selftest agent", () => {
  const agentParams = { program: "/opt/mr/macos-runner", configPath: "/etc/mr/config.yml", stateDir: "/var/mr", reportPath: "/var/log/mr/r.json", outPath: "/var/mr/selftest/selftest.out", logPath: "/var/log/mr/selftest.log" };

  test("runs once, where the slots run: their session, process type, environment and PATH; never kept alive", () => {
    const [slot] = renderAgents(params({ slots: 1 }));
    const agent = renderSelftestAgent({ ...agentParams, args: [] });
    const p = parse(agent.xml) as Record<string, unknown>;
    expect(agent).toMatchObject({ label: "dev.macos-runner.selftest", domain: "gui" });
    expect(p).toMatchObject({ RunAtLoad: true, KeepAlive: false, StandardOutPath: agentParams.outPath, StandardErrorPath: agentParams.logPath, WorkingDirectory: "/var/mr" });
    const s = parse(slot!.xml) as Record<string, unknown>;
    for (const key of ["EnvironmentVariables", "LimitLoadToSessionType", "ProcessType"]) expect(p[key]).toEqual(s[key]);
    expect(p.ProgramArguments).toEqual(["/opt/mr/macos-runner", "selftest", "--in-agent", "--config", "/etc/mr/config.yml", "--report", "/var/log/mr/r.json"]);
  });

  test("its own flags follow", () => {
    const p = parse(renderSelftestAgent({ ...agentParams, args: ["--snapshot"] }).xml) as { ProgramArguments: string[] };
    expect(p.ProgramArguments.at(-1)).toBe("--snapshot");
  });
});

describe("reading plists back", () => {
  const base = () => parsed(renderAgents(params({ slots: 1 }))[0]!.xml);

  test("a secret in EnvironmentVariables is refused", () => {
    const p = base();
    const xml = build({ ...p, EnvironmentVariables: { ...(p.EnvironmentVariables as Dict), TART_REGISTRY_PASSWORD: "hunter2" } } as never);
    expect(() => validateAgentPlist(xml, "x.plist")).toThrow(/x.plist: EnvironmentVariables must not carry secrets, found 'TART_REGISTRY_PASSWORD'/);
  });

  test("missing or mistyped keys are named", () => {
    const { ExitTimeOut: _, ...noExit } = base();
    expect(() => validateAgentPlist(build(noExit as never), "a.plist")).toThrow("launchd plist a.plist: ExitTimeOut is required");
    expect(() => readAgentPlist(build({ ...base(), ThrottleInterval: "1" } as never), "b.plist")).toThrow(/ThrottleInterval must be a non-negative <integer>/);
    expect(() => readAgentPlist(build({ Label: "x" } as never), "c.plist")).toThrow(/ProgramArguments must be a non-empty <array>/);
    expect(() => readAgentPlist(build({ ...base(), KeepAlive: { SuccessfulExit: "yes" } } as never), "d.plist")).toThrow(/KeepAlive must be a boolean or a <dict>/);
    expect(() => validateAgentPlist(build({ ...base(), LimitLoadToSessionType: "Background" } as never), "e.plist")).toThrow(/must be Aqua/);
  });

  test("text that is not a plist is refused", () => {
    expect(() => readAgentPlist("<html>", "f.plist")).toThrow(PlistInvalidError);
    expect(() => readAgentPlist(build(["a"] as never), "g.plist")).toThrow(/top level must be a <dict>/);
  });
});
