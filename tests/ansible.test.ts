// The Ansible playbook: ansible/check.sh (syntax check + ansible-lint) passes,
// the role links every command to the one binary, re-signs a binary that
// codesign refuses and stops a host whose binary still fails, and the example inventory's
// config is one the config loader accepts, with every secret path in it
// pointing at a file the playbook copies.
import { afterAll, expect, test } from "bun:test";
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse, stringify } from "yaml";
import { parseConfig } from "../lib/config/index.ts";
import { BIN, ensureBinaries } from "./helpers/e2e.ts";
import { APP_KEY_PEM } from "./fixtures/app-key.ts";

const ANSIBLE = join(import.meta.dir, "..", "ansible");
const home = mkdtempSync(join(tmpdir(), "ansible-test-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

test.concurrent("ansible/check.sh passes", async () => {
  const proc = Bun.spawn([join(ANSIBLE, "check.sh")], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect({ code, out: code === 0 ? "" : out + err }).toEqual({ code: 0, out: "" });
}, 60_000);

test.concurrent("the role links each command of the build to the binary, replacing a full binary of an older release", async () => {
  ensureBinaries(["loop"]);
  const commands = readdirSync(BIN).filter((n) => n !== "macos-runner").sort();
  const base = join(home, "links");
  const binDir = join(base, "bin");
  mkdirSync(binDir, { recursive: true });
  // The host after the copy task (which runs as root:wheel, so not here), with
  // `loop` still the full binary an older release installed.
  linkSync(join(BIN, "macos-runner"), join(binDir, "macos-runner"));
  writeFileSync(join(binDir, "loop"), "#!/bin/sh\necho old release\n", { mode: 0o755 });
  const vars = {
    macos_runner_binary_src: BIN,
    macos_runner_bin_dir: binDir,
    macos_runner_config_dir: join(base, "config"),
    macos_runner_config_path: join(base, "config", "config.yml"),
    macos_runner_config_template: join(ANSIBLE, "roles/macos_runner/templates/config.yml.j2"),
    macos_runner_config: {},
    macos_runner_secret_files: [],
    macos_runner_known_hosts_src: "",
    ansible_become: false,
    // The controller's own Python: no interpreter discovery on each run.
    ansible_python_interpreter: "{{ ansible_playbook_python }}",
  };
  const playbook = join(base, "play.yml");
  const tasks = join(ANSIBLE, "roles/macos_runner/tasks/files.yml");
  writeFileSync(playbook, stringify([{ hosts: "localhost", connection: "local", gather_facts: false, vars, tasks: [{ "ansible.builtin.import_tasks": tasks }] }]));
  const play = async () => {
    const argv = ["ansible-playbook", "-i", "localhost,", playbook, "--start-at-task", "List the commands (the links beside the binary in the build output)"];
    const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ANSIBLE_CONFIG: join(ANSIBLE, "ansible.cfg"), NO_COLOR: "1" } });
    const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect({ code, out: code === 0 ? "" : out + err }).toEqual({ code: 0, out: "" });
    return out;
  };
  await play();
  expect(readdirSync(binDir).sort()).toEqual([...commands, "macos-runner"].sort());
  for (const name of commands) {
    expect(lstatSync(join(binDir, name)).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(binDir, name))).toBe("macos-runner");
  }
  // A re-run with nothing new changes nothing.
  expect(await play()).toMatch(/localhost\s+: ok=\d+\s+changed=0 /);
}, 60_000);

test.concurrent("after the copy: a binary that codesign refuses is re-signed ad hoc; one that still fails stops its host's play", async () => {
  // Three hosts on this machine, each with its own bin dir, and a fake codesign
  // (tests/fixtures/codesign) whose verdict is the binary's first line.
  const base = join(home, "signature");
  const hosts = {
    verifies: "signature: ok\nbinary\n",
    "needs-resign": "signature: bad\nbinary\n",
    unsignable: "signature: bad\nunsignable\n",
  };
  const binDir = (host: string) => join(base, host, "bin");
  for (const [host, content] of Object.entries(hosts)) {
    mkdirSync(binDir(host), { recursive: true });
    writeFileSync(join(binDir(host), "macos-runner"), content, { mode: 0o755 });
  }
  const inventory = join(base, "inventory.yml");
  const hostVars = Object.fromEntries(Object.keys(hosts).map((h) => [h, { ansible_connection: "local", ansible_python_interpreter: "{{ ansible_playbook_python }}", macos_runner_bin_dir: binDir(h) }]));
  writeFileSync(inventory, stringify({ all: { hosts: hostVars } }));
  const playbook = join(base, "play.yml");
  const vars = { macos_runner_codesign: join(import.meta.dir, "fixtures", "codesign", "codesign"), ansible_become: false };
  writeFileSync(playbook, stringify([{ hosts: "all", gather_facts: false, vars, tasks: [{ "ansible.builtin.import_tasks": join(ANSIBLE, "roles/macos_runner/tasks/signature.yml") }] }]));
  const proc = Bun.spawn(["ansible-playbook", "-i", inventory, playbook], { stdout: "pipe", stderr: "pipe", env: { ...process.env, ANSIBLE_CONFIG: join(ANSIBLE, "ansible.cfg"), NO_COLOR: "1" } });
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect({ code, err: code === 2 ? "" : out + err }).toEqual({ code: 2, err: "" });
  const read = (host: string) => readFileSync(join(binDir(host), "macos-runner"), "utf8");
  expect(read("verifies")).toBe(hosts.verifies);
  expect(read("needs-resign")).toBe("signature: re-signed\nbinary\n");
  expect(read("unsignable")).toBe(hosts.unsignable);
  expect(out).toMatch(/verifies\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0/);
  expect(out).toMatch(/needs-resign\s+: ok=\d+\s+changed=1\s+unreachable=0\s+failed=0/);
  expect(out).toMatch(/unsignable\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=1/);
  const failure = out.slice(out.indexOf("fatal: [unsignable]"));
  expect(failure.replace(/\s+/g, " ")).toContain(
    `${binDir("unsignable")}/macos-runner does not pass codesign --verify --strict, not even after codesign --force --sign - ` +
      `(verify: ${binDir("unsignable")}/macos-runner: invalid signature (code or signature have been modified) In architecture: arm64; ` +
      `sign: ${binDir("unsignable")}/macos-runner: main executable failed strict validation): macOS would kill every agent at launch.`,
  );
}, 60_000);

test.concurrent("the example inventory's config loads, and its secret paths are the files the playbook copies", () => {
  const vars = parse(readFileSync(join(ANSIBLE, "inventory.example.yml"), "utf8")).all.children.macos_runners.vars;
  const runnerHome: string = vars.macos_runner_home;
  const copied = [...vars.macos_runner_secret_files.map((f: { dest: string }) => f.dest), `${vars.macos_runner_config_dir}/known_hosts`];
  // Lay the copied files out under a stand-in HOME, as the playbook would under the runner's.
  for (const dest of copied) {
    const path = join(home, dest.slice(runnerHome.length));
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, path.endsWith(".pem") ? APP_KEY_PEM : "x\n", { mode: 0o600 });
  }
  const config = parseConfig(stringify(vars.macos_runner_config), { file: join(home, ".config/macos-runner/config.yml"), env: { HOME: home } });
  const secretPaths = [
    config.github.auth.kind === "app" ? config.github.auth.privateKeyPath : config.github.auth.tokenPath,
    config.image.passwordPath!,
    config.vm.ssh!.privateKeyPath,
    config.vm.ssh!.knownHostsPath,
  ].map((p) => runnerHome + p.slice(home.length));
  expect(secretPaths.sort()).toEqual(copied.sort());
  expect(vars.macos_runner_config_path).toBe(`${vars.macos_runner_config_dir}/config.yml`);
});
