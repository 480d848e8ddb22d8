// lib/launchd/plist on its schema: what a read plist holds, and the agent
// rules a rendered plist breaks, all of them in one error.
import { describe, expect, test } from "bun:test";
import { build } from "plist";
import { readAgentPlist, validateAgentPlist } from "../lib/host/launchd/plist.ts";

type Dict = Record<string, unknown>;
const xml = (d: Dict) => build(d as never);

/** A slot agent as install renders it. */
const agent = (): Dict => ({
  Label: "dev.macos-runner.slot.1",
  ProgramArguments: ["/usr/local/libexec/macos-runner/loop", "--slot", "1", "--config", "/Users/ci/.config/macos-runner/config.yml"],
  RunAtLoad: true,
  KeepAlive: true,
  ThrottleInterval: 1,
  ExitTimeOut: 21_900,
  ProcessType: "Interactive",
  LimitLoadToSessionType: "Aqua",
  WorkingDirectory: "/Users/ci/state",
  StandardOutPath: "/Users/ci/logs/slot-1.log",
  StandardErrorPath: "/Users/ci/logs/slot-1.log",
  EnvironmentVariables: { PATH: "/opt/homebrew/bin:/usr/bin:/bin", CI: "true" },
});

describe("readAgentPlist", () => {
  test("keeps the keys we use, drops the others, and reads KeepAlive as launchd does", () => {
    const p = readAgentPlist(xml({ ...agent(), KeepAlive: { SuccessfulExit: false, Crashed: true }, Nice: 5 }), "a.plist");
    expect(p.KeepAlive).toEqual({ SuccessfulExit: false });
    expect(Object.keys(p)).not.toContain("Nice");
    expect(validateAgentPlist(xml(agent()), "b.plist")).toEqual(readAgentPlist(xml(agent()), "b.plist"));
  });

  test("every mistyped key is named in one error", () => {
    const bad = xml({ ...agent(), Label: "", RunAtLoad: "yes", StartInterval: -1, EnvironmentVariables: { PATH: 1 } });
    expect(() => readAgentPlist(bad, "c.plist")).toThrow(
      "launchd plist c.plist: Label is required; RunAtLoad must be <true/> or <false/>; StartInterval must be a non-negative <integer> (seconds); EnvironmentVariables must be a <dict> of <string> values",
    );
  });
});

describe("validateAgentPlist", () => {
  test.each([
    ["RunAtLoad false", { RunAtLoad: false }, "RunAtLoad must be true"],
    ["an unbounded ExitTimeOut", { ExitTimeOut: 0 }, "ExitTimeOut 0 means wait forever; it must be bounded"],
    ["no --config", { ProgramArguments: ["/usr/local/libexec/macos-runner/loop", "--slot", "1"] }, "ProgramArguments must pass --config PATH"],
    ["a relative program", { ProgramArguments: ["loop", "--config", "/c.yml"] }, "ProgramArguments[0] must be an absolute path, got 'loop' (launchd does not expand ~ or relative paths)"],
    ["no Homebrew in PATH", { EnvironmentVariables: { PATH: "/usr/bin:/bin" } }, "EnvironmentVariables.PATH must include /opt/homebrew/bin (where Homebrew puts tart)"],
  ])("%s is refused", (_name, change, message) => {
    expect(() => validateAgentPlist(xml({ ...agent(), ...change }), "d.plist")).toThrow(`launchd plist d.plist: ${message}`);
  });

  test("every broken rule is named in one error", () => {
    const { ProcessType: _, ...rest } = agent();
    const bad = xml({ ...rest, Label: "dev.macos-runner.slot.3", StandardOutPath: "logs/slot-3.log", EnvironmentVariables: { PATH: "/opt/homebrew/bin", GITHUB_TOKEN: "x" } });
    expect(() => validateAgentPlist(bad, "e.plist")).toThrow(
      "launchd plist e.plist: unexpected Label 'dev.macos-runner.slot.3'; StandardOutPath must be an absolute path, got 'logs/slot-3.log' (launchd does not expand ~ or relative paths); ProcessType is required; EnvironmentVariables must not carry secrets, found 'GITHUB_TOKEN'; put the secret in a 0600 file named by the config",
    );
  });
});
