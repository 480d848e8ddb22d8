// The playbook's tart: a tart older than the slots need (lib/vm/tart-version.ts)
// is upgraded with brew, a recent one is left alone, and one that brew cannot
// bring up to the floor stops its host's play. Hosts on this machine, each
// with a Homebrew prefix holding a fake brew and tart.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { MIN_TART_VERSION } from "../lib/vm/tart-version.ts";

const ANSIBLE = join(import.meta.dir, "..", "ansible");
const base = mkdtempSync(join(tmpdir(), "ansible-tart-test-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** tart prints the prefix's tart-version; brew upgrade installs brew-has, when there is one, and logs its arguments. */
const FAKE_TART = '#!/bin/sh\n[ "$1" = --version ] && cat "$(dirname "$0")/../tart-version"\n';
const FAKE_BREW = `#!/bin/sh
prefix="$(dirname "$0")/.."
echo "$*" >> "$prefix/brew.log"
if [ "$1" = upgrade ] && [ -f "$prefix/brew-has" ]; then cp "$prefix/brew-has" "$prefix/tart-version"; fi
`;

test("the role's tart floor is the one the binaries enforce", () => {
  const vars = parse(readFileSync(join(ANSIBLE, "roles/macos_runner/vars/main.yml"), "utf8"));
  expect(vars.macos_runner_tart_min_version).toBe(MIN_TART_VERSION);
});

test("an old tart is upgraded, a recent one left alone, and one brew cannot upgrade enough stops its host's play", async () => {
  const hosts: Record<string, { installed: string; brewHas?: string }> = {
    old: { installed: "2.30.1", brewHas: "2.35.0" },
    current: { installed: MIN_TART_VERSION },
    stuck: { installed: "2.20.0" },
  };
  const prefix = (host: string) => join(base, host);
  for (const [host, { installed, brewHas }] of Object.entries(hosts)) {
    mkdirSync(join(prefix(host), "bin"), { recursive: true });
    writeFileSync(join(prefix(host), "bin", "tart"), FAKE_TART, { mode: 0o755 });
    writeFileSync(join(prefix(host), "bin", "brew"), FAKE_BREW, { mode: 0o755 });
    writeFileSync(join(prefix(host), "tart-version"), `${installed}\n`);
    if (brewHas) writeFileSync(join(prefix(host), "brew-has"), `${brewHas}\n`);
  }
  const inventory = join(base, "inventory.yml");
  const hostVars = Object.fromEntries(Object.keys(hosts).map((h) => [h, { ansible_connection: "local", ansible_python_interpreter: "auto_silent", macos_runner_homebrew_prefix: prefix(h) }]));
  writeFileSync(inventory, stringify({ all: { hosts: hostVars } }));
  // The role's own tasks, defaults and vars; the drain between them is not part of this test.
  const role = (tasks: string) => ({ "ansible.builtin.import_role": { name: join(ANSIBLE, "roles/macos_runner"), tasks_from: tasks } });
  const playbook = join(base, "play.yml");
  writeFileSync(playbook, stringify([{ hosts: "all", gather_facts: false, vars: { ansible_become: false }, tasks: [role("tart.yml"), role("tart-upgrade.yml")] }]));
  // From the version check on: the DHCP and brew install tasks before it need a Mac.
  const argv = ["ansible-playbook", "-i", inventory, playbook, "--start-at-task", "Read tart's version"];
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", env: { ...process.env, ANSIBLE_CONFIG: join(ANSIBLE, "ansible.cfg"), NO_COLOR: "1" } });
  const [code, out, err] = await Promise.all([proc.exited, new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  expect({ code, err: code === 2 ? "" : out + err }).toEqual({ code: 2, err: "" });

  const installed = (host: string) => readFileSync(join(prefix(host), "tart-version"), "utf8").trim();
  const brewed = (host: string) => (existsSync(join(prefix(host), "brew.log")) ? readFileSync(join(prefix(host), "brew.log"), "utf8") : "");
  expect(installed("old")).toBe("2.35.0");
  expect(brewed("old")).toBe("upgrade cirruslabs/cli/tart\n");
  expect(brewed("current")).toBe("");
  expect(brewed("stuck")).toBe("upgrade cirruslabs/cli/tart\n");
  expect(out).toMatch(/old\s+: ok=\d+\s+changed=1\s+unreachable=0\s+failed=0/);
  expect(out).toMatch(/current\s+: ok=\d+\s+changed=0\s+unreachable=0\s+failed=0/);
  expect(out).toMatch(/stuck\s+: ok=\d+\s+changed=1\s+unreachable=0\s+failed=1/);
  expect(out.slice(out.indexOf("fatal: [stuck]")).replace(/\s+/g, " ")).toContain(
    `tart is 2.20.0 after brew upgrade cirruslabs/cli/tart; the slots need ${MIN_TART_VERSION} or later (install refuses an older one).`,
  );
}, 60_000);
