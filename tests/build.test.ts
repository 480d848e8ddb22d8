// tools/build.ts: one multi-call executable per target with a relative link
// per command, and the dispatch on the name it runs as (compiled, linux-x64).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { linkSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

const root = join(import.meta.dir, "..");
const COMMANDS = readdirSync(join(root, "scripts"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => basename(f, ".ts"))
  .sort();
// Its own output directory: other test files run dist/linux-x64 meanwhile.
const OUT = mkdtempSync(join(tmpdir(), "build-test-"));
const LINUX = join(OUT, "linux-x64");
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

function build(...args: string[]) {
  return spawnSync(process.execPath, [join(root, "tools/build.ts"), "--out", OUT, ...args], { encoding: "utf8" });
}

function run(exe: string, args: string[]) {
  const r = spawnSync(exe, args, { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("the darwin-arm64 target is one Mach-O arm64 executable, and every command is a relative link to it", () => {
  const r = build("--target", "darwin-arm64");
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  const dir = join(OUT, "darwin-arm64");
  expect(readdirSync(dir).sort()).toEqual([...COMMANDS, "macos-runner"].sort());
  const head = readFileSync(join(dir, "macos-runner")).subarray(0, 8);
  expect(head.readUInt32LE(0)).toBe(0xfeedfacf); // MH_MAGIC_64
  expect(head.readUInt32LE(4)).toBe(0x0100000c); // CPU_TYPE_ARM64
  expect(lstatSync(join(dir, "macos-runner")).isFile()).toBe(true);
  for (const name of COMMANDS) {
    expect(lstatSync(join(dir, name)).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, name))).toBe("macos-runner");
  }
}, 120_000);

test("an unknown target fails the build with its name", () => {
  const bad = build("--target", "windows-x64");
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toContain("unknown target 'windows-x64'");
});

describe("the linux-x64 macos-runner", () => {
  let tmp: string;
  beforeAll(() => {
    const r = build("--target", "linux-x64");
    if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
    tmp = mkdtempSync(join(tmpdir(), "build-test-"));
  }, 120_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  test("every command runs through its link, and as `macos-runner COMMAND`, with the same help", () => {
    for (const name of COMMANDS) {
      const link = run(join(LINUX, name), ["--help"]);
      expect({ name, code: link.code, stderr: link.stderr }).toEqual({ name, code: 0, stderr: "" });
      expect(link.stdout).toStartWith(`${name}: `);
      expect(link.stdout).toContain(`Usage: ${name} [options]`);
      expect(link.stdout).toContain("Exit codes:");
      const sub = run(join(LINUX, "macos-runner"), [name, "--help"]);
      expect({ name, code: sub.code, stdout: sub.stdout }).toEqual({ name, code: 0, stdout: link.stdout });
    }
  });

  test("the command gets the arguments after its name, and only it runs", () => {
    const r = run(join(LINUX, "macos-runner"), ["loop", "--slot", "3"]);
    expect(r.code).toBe(64);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ command: "loop", kind: "usage", msg: expect.stringContaining("--slot must be 1 or 2, got '3'") });
  });

  test("a hard link and a symlink from another directory run the command they are named after", () => {
    linkSync(join(LINUX, "macos-runner"), join(tmp, "token"));
    symlinkSync(join(LINUX, "macos-runner"), join(tmp, "clone"));
    expect(run(join(tmp, "token"), ["--help"]).stdout).toStartWith("token: ");
    expect(run(join(tmp, "clone"), ["--help"]).stdout).toStartWith("clone: ");
  });

  test("macos-runner --help lists every command with its summary", () => {
    const r = run(join(LINUX, "macos-runner"), ["--help"]);
    expect(r.code).toBe(0);
    const listed = r.stdout.split("Commands:\n")[1]!.split("\n\n")[0]!.split("\n");
    expect(listed.map((l) => l.trim().split(/\s+/)[0])).toEqual(COMMANDS);
    expect(listed.every((l) => /^ {2}\S+\s{2,}\S/.test(l))).toBe(true);
  });

  test("an unknown command, no command, or a link with an unknown name: exit 64 listing the commands", () => {
    symlinkSync(join(LINUX, "macos-runner"), join(tmp, "pul"));
    for (const [exe, args, problem] of [
      [join(LINUX, "macos-runner"), ["nope", "--help"], "unknown command 'nope'"],
      [join(LINUX, "macos-runner"), [], "no command given"],
      [join(tmp, "pul"), ["--help"], "invoked as 'pul', which is not a command"],
    ] as const) {
      const r = run(exe, [...args]);
      expect({ problem, code: r.code, stdout: r.stdout }).toEqual({ problem, code: 64, stdout: "" });
      const line = JSON.parse(r.stderr.trim());
      expect(line).toMatchObject({ command: "macos-runner", kind: "usage", exit_code: 64 });
      expect(line.msg).toContain(problem);
      expect(line.msg).toContain(`commands: ${COMMANDS.join(", ")}`);
    }
  });
});
