// `install` run as a process: --dry-run output (source and compiled binary),
// the refusal off macOS, --help, bad input.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { parse } from "plist";
import { makeHost } from "./fixtures/launchd/host.ts";
import { MIN_TART_VERSION } from "../lib/vm/tart-version.ts";
import { BIN, ensureBinaries } from "./helpers/e2e.ts";

const ROOT = join(import.meta.dir, "..");
let dir: string;

async function install(args: string[], exe: string[] = [process.execPath, join(ROOT, "scripts", "install.ts")]) {
  const proc = Bun.spawn([...exe, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, HOME: dir } });
  const [code, stdout, stderr] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code, stdout, stderr };
}

/** The plists a dry run would write, keyed by path, parsed with the real parser: the agents', then the daemon's (staged, then installed as root). */
function plistsIn(stdout: string): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const m of stdout.matchAll(/^cat > '?(.+?)'? <<'PLIST'\n([\s\S]*?)\nPLIST$/gm)) out[m[1]!] = parse(m[2]!) as Record<string, unknown>;
  const daemon = /^staged=\$\(mktemp\) && cat > "\$staged" <<'PLIST'\n([\s\S]*?)\nPLIST\nsudo -n \/usr\/bin\/install -m 0644 -o root -g wheel "\$staged" '?(.+?)'?$/gm;
  for (const m of stdout.matchAll(daemon)) out[m[2]!] = parse(m[1]!) as Record<string, unknown>;
  return out;
}

const uid = process.getuid!();

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "install-test-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("install --dry-run", () => {
  test("prints both slot plists and the launchctl commands, and changes nothing", async () => {
    const h = makeHost(join(dir, "two"));
    const r = await install(["--dry-run", "--config", h.config, "--bin-dir", h.binDir, "--agents-dir", h.agentsDir]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const plists = plistsIn(r.stdout);
    const slot1 = join(h.agentsDir, "dev.macos-runner.slot.1.plist");
    const slot2 = join(h.agentsDir, "dev.macos-runner.slot.2.plist");
    expect(Object.keys(plists).sort()).toEqual([slot1, slot2]);
    expect(plists[slot1]!.ProgramArguments).toEqual([join(h.binDir, "loop"), "--slot", "1", "--config", h.config]);
    expect(plists[slot2]!.StandardOutPath).toBe(join(h.logDir, "slot-2.log"));
    expect(plists[slot1]!.ExitTimeOut).toBe(3600 + 300);
    const lines = r.stdout.split("\n");
    // Loaded agents are booted out and polled until gone before the new ones are bootstrapped.
    const bootout = lines.findIndex((l) => l.startsWith(`launchctl bootout gui/${uid}/dev.macos-runner.slot.1 `));
    const poll = lines.findIndex((l) => l.startsWith(`launchctl print gui/${uid}/dev.macos-runner.slot.1 `));
    const bootstrap = lines.indexOf(`launchctl bootstrap gui/${uid} ${slot1}`);
    expect(bootout).toBeGreaterThan(-1);
    expect(poll).toBeGreaterThan(bootout);
    expect(bootstrap).toBeGreaterThan(poll);
    expect(lines).toContain(`launchctl bootstrap gui/${uid} ${slot2}`);
    expect(lines).toContain(`mkdir -p ${h.logDir}`);
    expect(r.stdout).toContain(`# check: a GUI session for uid ${uid}: launchctl print gui/${uid}`);
    expect(r.stdout).toContain(`# check: tart at tart (host.tart_path), version ${MIN_TART_VERSION} or later`);
    expect(r.stdout).not.toContain(`launchctl bootstrap gui/${uid} ${join(h.agentsDir, "dev.macos-runner.pull.plist")}`);
    expect(existsSync(h.agentsDir)).toBe(false);
    expect(existsSync(h.logDir)).toBe(false);
  });

  test("one slot: one slot agent; a pull binary adds the pull daemon, loaded as root in the system domain and run as this user", async () => {
    const h = makeHost(join(dir, "one-pull"), { slots: 1, binaries: ["loop", "pull"] });
    const daemons = join(dir, "one-pull", "LaunchDaemons");
    const r = await install(["--dry-run", "--config", h.config, "--bin-dir", h.binDir, "--agents-dir", h.agentsDir, "--daemons-dir", daemons]);
    expect(r.code).toBe(0);
    const byPath = plistsIn(r.stdout);
    const daemonPath = join(daemons, "dev.macos-runner.pull.plist");
    expect(Object.keys(byPath).sort()).toEqual([join(h.agentsDir, "dev.macos-runner.slot.1.plist"), daemonPath].sort());
    const plists = Object.values(byPath);
    expect(plists.map((p) => p.Label)).toEqual(["dev.macos-runner.slot.1", "dev.macos-runner.pull"]);
    // image.pull_interval: 15m in the config.
    expect(plists[1]!.StartInterval).toBe(900);
    expect(plists[1]!.UserName).toBe(userInfo().username);
    expect((plists[1]!.EnvironmentVariables as Record<string, string>).HOME).toBe(dir);
    expect(plists[1]!.LimitLoadToSessionType).toBeUndefined();
    const lines = r.stdout.split("\n");
    expect(lines).toContain(`sudo -n launchctl bootstrap system ${daemonPath}`);
    expect(lines).not.toContain(`launchctl bootstrap gui/${uid} ${join(h.agentsDir, "dev.macos-runner.pull.plist")}`);
    // A pull agent of an earlier release is stopped and its plist removed.
    expect(lines.some((l) => l.startsWith(`launchctl bootout gui/${uid}/dev.macos-runner.pull `))).toBe(true);
    expect(lines).toContain(`rm -f ${join(h.agentsDir, "dev.macos-runner.pull.plist")}`);
    // A slot-2 agent left from an earlier two-slot install is stopped and its plist removed.
    expect(r.stdout).toContain(`launchctl bootout gui/${uid}/dev.macos-runner.slot.2`);
    expect(r.stdout).toContain(`rm -f ${join(h.agentsDir, "dev.macos-runner.slot.2.plist")}`);
  });

  test("--remove drains, runs cleanup for each slot, removes the plists", async () => {
    const h = makeHost(join(dir, "remove"), { binaries: ["loop", "cleanup"] });
    const r = await install(["--dry-run", "--remove", "--config", h.config, "--bin-dir", h.binDir, "--agents-dir", h.agentsDir]);
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    const cleanup1 = lines.findIndex((l) => l.startsWith(`${join(h.binDir, "cleanup")} --slot 1 --config ${h.config} --golden`));
    expect(cleanup1).toBeGreaterThan(lines.findIndex((l) => l.startsWith(`launchctl print gui/${uid}/dev.macos-runner.slot.2 `)));
    expect(lines.some((l) => l.startsWith(`${join(h.binDir, "cleanup")} --slot 2 --config ${h.config} --golden`))).toBe(true);
    for (const label of ["slot.1", "slot.2", "pull"]) expect(lines).toContain(`rm -f ${join(h.agentsDir, `dev.macos-runner.${label}.plist`)}`);
    expect(lines).toContain("sudo -n rm -f /Library/LaunchDaemons/dev.macos-runner.pull.plist");
    expect(Object.keys(plistsIn(r.stdout))).toEqual([]);
    expect(r.stdout).not.toContain("bootstrap");
  });

  test("odd paths are quoted in commands and escaped in the plist", async () => {
    const base = join(dir, "R&D it's");
    const h = makeHost(base, { slots: 1, logDir: join(base, "Logs & <more>") });
    const r = await install(["--dry-run", "--config", h.config, "--bin-dir", h.binDir, "--agents-dir", h.agentsDir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("<string>" + join(base, "Logs &amp; &lt;more&gt;", "slot-1.log").replace(/&(?!amp;|lt;|gt;)/g, "&amp;") + "</string>");
    expect(r.stdout).toContain(`mkdir -p '${join(dir, "R&D it'\\''s", "Logs & <more>")}'`);
  });

  test("the compiled binary embeds the templates and finds the command links beside macos-runner", async () => {
    ensureBinaries(["install"]);
    // As installed on a host: the binary and a relative link per command.
    const h = makeHost(join(dir, "compiled"), { slots: 1, binaries: [] });
    linkSync(join(BIN, "macos-runner"), join(h.binDir, "macos-runner"));
    for (const name of ["install", "loop", "pull"]) symlinkSync("macos-runner", join(h.binDir, name));
    // Also through a link elsewhere: the bin dir is where the real binary is.
    const elsewhere = join(dir, "compiled", "elsewhere");
    mkdirSync(elsewhere);
    symlinkSync(join(h.binDir, "macos-runner"), join(elsewhere, "install"));
    for (const exe of [join(h.binDir, "install"), join(elsewhere, "install")]) {
      const r = await install(["--dry-run", "--config", h.config, "--agents-dir", h.agentsDir], [exe]);
      expect(r.stderr).toBe("");
      const plists = Object.values(plistsIn(r.stdout));
      expect(plists.map((p) => (p.ProgramArguments as string[])[0])).toEqual([join(h.binDir, "loop"), join(h.binDir, "pull")]);
    }
  }, 120_000);
});

describe("install --print-daemon", () => {
  test("prints the pull daemon's plist as install would write it (what the playbook installs as root); nothing without a pull command", async () => {
    const h = makeHost(join(dir, "print-daemon"), { slots: 1, binaries: ["loop", "pull"] });
    const r = await install(["--print-daemon", "--config", h.config, "--bin-dir", h.binDir]);
    expect(r.code).toBe(0);
    const p = parse(r.stdout) as Record<string, unknown>;
    expect(p.Label).toBe("dev.macos-runner.pull");
    expect(p.ProgramArguments).toEqual([join(h.binDir, "pull"), "--config", h.config]);
    expect(p.UserName).toBe(userInfo().username);
    const none = await install(["--print-daemon", "--config", h.config, "--bin-dir", join(dir, "print-daemon", "nowhere")]);
    expect(none).toEqual({ code: 0, stdout: "", stderr: "" });
  });
});

describe("install refuses", () => {
  test("off macOS, with a clear message and its own exit code, changing nothing", async () => {
    const h = makeHost(join(dir, "linux"));
    const r = await install(["--config", h.config, "--bin-dir", h.binDir, "--agents-dir", h.agentsDir]);
    expect(r.code).toBe(69);
    expect(r.stderr).toContain(`install must run on the macOS host that serves the slots (this is ${process.platform}); use --dry-run to see what it would do`);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(existsSync(h.agentsDir)).toBe(false);
  });

  test("a config file that does not exist: exit 78 naming it", async () => {
    const r = await install(["--dry-run", "--config", join(dir, "nope.yml")]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`config file ${join(dir, "nope.yml")} not found`);
  });

  test("three slots: exit 78 naming host.slots", async () => {
    const h = makeHost(join(dir, "three"), { slots: 3 });
    const r = await install(["--dry-run", "--config", h.config]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("host.slots");
  });

  test("an unknown flag: exit 64", async () => {
    const r = await install(["--dryrun"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("--dryrun");
  });
});

test("--help lists the flags and every exit code", async () => {
  const r = await install(["--help"]);
  expect(r.code).toBe(0);
  for (const flag of ["--dry-run", "--remove", "--agents-dir DIR", "--bin-dir DIR", "--config PATH"]) expect(r.stdout).toContain(flag);
  const codes = r.stdout.split("Exit codes:")[1]!;
  for (const [code, what] of [
    [0, "success"],
    [1, "launchctl refused"],
    [64, "bad flags"],
    [69, "not macOS.*no GUI session.*tart not found.*loop not in the bin dir"],
    [75, "still loaded after its ExitTimeOut"],
    [78, "config"],
  ] as const) {
    expect(codes).toMatch(new RegExp(`^\\s+${code}  .*${what}`, "m"));
  }
});
