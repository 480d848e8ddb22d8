// The Ansible playbook: ansible/check.sh (syntax check + ansible-lint) passes,
// and the example inventory's config is one the config loader accepts, with
// every secret path in it pointing at a file the playbook copies.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse, stringify } from "yaml";
import { parseConfig } from "../lib/config.ts";
import { APP_KEY_PEM } from "./fixtures/app-key.ts";

const ANSIBLE = join(import.meta.dir, "..", "ansible");
const home = mkdtempSync(join(tmpdir(), "ansible-test-"));
afterAll(() => rmSync(home, { recursive: true, force: true }));

test("ansible/check.sh passes", async () => {
  const proc = Bun.spawn([join(ANSIBLE, "check.sh")], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect({ code, out: code === 0 ? "" : out + err }).toEqual({ code: 0, out: "" });
}, 30_000);

test("the example inventory's config loads, and its secret paths are the files the playbook copies", () => {
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
    config.vm.ssh.privateKeyPath,
    config.vm.ssh.knownHostsPath,
  ].map((p) => runnerHome + p.slice(home.length));
  expect(secretPaths.sort()).toEqual(copied.sort());
  expect(vars.macos_runner_config_path).toBe(`${vars.macos_runner_config_dir}/config.yml`);
});
