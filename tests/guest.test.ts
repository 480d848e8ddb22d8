// guest/: the Packer template parses as HCL2 (packer itself is not on this
// machine; @cdktf/hcl2json is HashiCorp's HCL parser compiled to wasm), its
// variables all live in variables.pkr.hcl, it runs every provisioning script
// and only those; every script passes `bash -n` and shellcheck; the clock
// daemon is a valid plist; actions-runner.sh installs only the pinned runner
// whose download matches the pinned sha256; record-host-key pins under the product's alias;
// push labels the image with the runner version and its release date.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parse as parsePlist } from "plist";
import { HOST_KEY_ALIAS } from "../lib/vm/ssh.ts";
import { generateEd25519 } from "../sim/image/keys.ts";

// Imported by a computed name: the package's types pull in the DOM lib, which changes Node's fetch types project-wide.
const HCL2JSON = "@cdktf/hcl2json";
const { parse: parseHcl } = (await import(HCL2JSON)) as { parse(file: string, text: string): Promise<unknown> };

const GUEST = join(import.meta.dir, "..", "guest");
const hclFiles = readdirSync(GUEST).filter((f) => f.endsWith(".pkr.hcl"));
const scripts = [...readdirSync(join(GUEST, "scripts")).map((f) => join("scripts", f)), "record-host-key", "push"];

type Json = Record<string, unknown>;
let parsed: Record<string, Json>;
let tmp: string;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "guest-test-"));
  parsed = {};
  for (const f of hclFiles) parsed[f] = (await parseHcl(f, readFileSync(join(GUEST, f), "utf8"))) as Json;
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the Packer template", () => {
  test("every .pkr.hcl parses as HCL2, and the parser does reject broken HCL", async () => {
    expect(hclFiles.sort()).toEqual(["runner.pkr.hcl", "variables.pkr.hcl"]);
    await expect(parseHcl("broken.pkr.hcl", 'source "tart-cli" "x" {\n  vm_name = "a"\n')).rejects.toThrow(/Unclosed configuration block/);
  });

  test("a tart-cli source from var.base_image, with the tart plugin required", () => {
    const t = parsed["runner.pkr.hcl"]!;
    const source = (t.source as Json)["tart-cli"] as Record<string, Json[]>;
    expect(source.runner![0]).toMatchObject({ vm_base_name: "${var.base_image}", vm_name: "${var.vm_name}", headless: true, ssh_username: "${var.user}" });
    const plugins = ((t.packer as Json[])[0]!.required_plugins as Json[])[0]!;
    expect((plugins.tart as Json).source).toBe("github.com/cirruslabs/tart");
  });

  test("every variable is declared in variables.pkr.hcl, used, and the pinned runner has a sha256", () => {
    const declared = Object.keys(parsed["variables.pkr.hcl"]!.variable as Json).sort();
    expect(parsed["runner.pkr.hcl"]!.variable).toBeUndefined();
    for (const v of ["base_image", "runner_version", "runner_sha256", "brew_packages", "xcode_xip_url", "user", "ssh_authorized_keys"]) expect(declared).toContain(v);
    const used = new Set([...JSON.stringify(parsed["runner.pkr.hcl"]).matchAll(/var\.([a-z0-9_]+)/g)].map((m) => m[1]!));
    expect([...used].sort()).toEqual(declared);
    const vars = parsed["variables.pkr.hcl"]!.variable as Record<string, Json[]>;
    expect(vars.runner_sha256![0]!.default).toMatch(/^[0-9a-f]{64}$/);
    expect(vars.runner_version![0]!.default).toMatch(/^\d+\.\d+\.\d+$/);
    expect(vars.password![0]!.sensitive).toBe(true);
  });

  test("the build runs every provisioning script once, downloads the host key, keys-only SSH last", () => {
    const build = (parsed["runner.pkr.hcl"]!.build as Json[])[0]!;
    // hcl2json groups provisioners by type; the order within a type is the file's.
    const provisioners = build.provisioner as Record<string, Json[]>;
    const run = provisioners.shell!.map((s) => String(s.script).replace("${path.root}/", ""));
    expect([...run].sort()).toEqual(scripts.filter((s) => s.startsWith("scripts/")).sort());
    expect(run.at(-1)).toBe("scripts/ssh-keys-only.sh");
    const download = provisioners.file!.find((f) => f.direction === "download")!;
    expect(download).toMatchObject({ source: "/etc/ssh/ssh_host_ed25519_key.pub", destination: "${path.root}/output/ssh_host_ed25519_key.pub" });
    expect(run.indexOf("scripts/ssh-host-key.sh")).toBeLessThan(run.indexOf("scripts/ssh-keys-only.sh"));
  });

  test("the clock daemon runs sntp -sS time.apple.com at load", () => {
    const p = parsePlist(readFileSync(join(GUEST, "files", "dev.macos-runner.time-sync.plist"), "utf8")) as Json;
    expect(p).toMatchObject({ Label: "dev.macos-runner.time-sync", ProgramArguments: ["/usr/bin/sntp", "-sS", "time.apple.com"], RunAtLoad: true });
  });
});

describe.each(scripts)("%s", (script) => {
  const path = join(GUEST, script);
  test("is executable, strict (set -euo pipefail), bash -n and shellcheck clean", () => {
    expect(readFileSync(path, "utf8")).toContain("set -euo pipefail");
    expect(spawnSync("test", ["-x", path]).status).toBe(0);
    const syntax = spawnSync("bash", ["-n", path], { encoding: "utf8" });
    expect(syntax.stderr).toBe("");
    expect(syntax.status).toBe(0);
    const lint = spawnSync("shellcheck", ["--shell=bash", path], { encoding: "utf8" });
    expect(lint.stdout).toBe("");
    expect(lint.status).toBe(0);
  });
});

describe("scripts/actions-runner.sh", () => {
  // The release download at the process boundary: a curl that serves files
  // from a directory laid out like github.com/actions/runner/releases/download.
  const releases = () => join(tmp, "runner-releases");
  const release = (version: string, reports = version): string => {
    const src = join(tmp, `runner-src-${version}-${reports}`);
    mkdirSync(join(src, "bin"), { recursive: true });
    writeFileSync(join(src, "bin", "Runner.Listener"), `#!/bin/sh\necho ${reports}\n`, { mode: 0o755 });
    writeFileSync(join(src, "run.sh"), "#!/bin/sh\n", { mode: 0o755 });
    const dir = join(releases(), `v${version}`);
    mkdirSync(dir, { recursive: true });
    const archive = join(dir, `actions-runner-osx-arm64-${version}.tar.gz`);
    expect(spawnSync("tar", ["-czf", archive, "-C", src, "."]).status).toBe(0);
    return spawnSync("shasum", ["-a", "256", archive], { encoding: "utf8" }).stdout.split(" ")[0]!;
  };
  const install = (name: string, env: Record<string, string>) => {
    const bin = join(tmp, "curl-bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(
      join(bin, "curl"),
      `#!/bin/sh\n# curl -fsSL --retry 3 -o FILE URL\nfile=$5; url=$6\nsrc=${releases()}/\${url#https://github.com/actions/runner/releases/download/}\n[ -f "$src" ] || { echo "curl: (22) The requested URL returned error: 404" >&2; exit 22; }\ncp "$src" "$file"\n`,
      { mode: 0o755 },
    );
    const home = join(tmp, `runner-home-${name}`);
    mkdirSync(home, { recursive: true });
    const r = spawnSync(join(GUEST, "scripts", "actions-runner.sh"), [], { encoding: "utf8", env: { PATH: `${bin}:${process.env.PATH}`, HOME: home, IMAGE_OS: "macos15", ...env } });
    return { ...r, runner: join(home, "actions-runner") };
  };

  test("installs the pinned version once its download matches the pinned sha256", () => {
    const sha = release("2.332.0");
    const r = install("ok", { RUNNER_VERSION: "2.332.0", RUNNER_SHA256: sha });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`actions-runner 2.332.0 unpacked in ${r.runner} (unconfigured)`);
    expect(readFileSync(join(r.runner, ".env"), "utf8")).toStartWith("ImageOS=macos15\n");
  });

  test("refuses a download whose sha256 differs, a release whose runner reports another version, and no pin", () => {
    release("2.332.0");
    const tampered = install("tampered", { RUNNER_VERSION: "2.332.0", RUNNER_SHA256: "0".repeat(64) });
    expect(tampered.status).not.toBe(0);
    expect(tampered.stdout + tampered.stderr).toContain("FAILED");
    expect(spawnSync("test", ["-e", tampered.runner]).status).toBe(1);
    const other = install("other", { RUNNER_VERSION: "2.331.0", RUNNER_SHA256: release("2.331.0", "2.333.0") });
    expect(other.status).toBe(1);
    expect(other.stderr).toContain("actions-runner: installed 2.333.0, expected 2.331.0");
    const unpinned = install("unpinned", { RUNNER_VERSION: "2.332.0" });
    expect(unpinned.status).toBe(1);
    expect(unpinned.stderr).toContain("RUNNER_SHA256 is required");
  });
});

describe("record-host-key", () => {
  test("pins the key under the product's alias, replacing an older one and keeping other lines", () => {
    expect(readFileSync(join(GUEST, "record-host-key"), "utf8")).toContain(`alias=${HOST_KEY_ALIAS}\n`);
    const pub = generateEd25519(join(tmp, "hostkey"), "root@image");
    const known = join(tmp, "config", "known_hosts");
    mkdirSync(join(tmp, "config"));
    writeFileSync(known, `other.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther\n${HOST_KEY_ALIAS} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOld\n`);
    const r = spawnSync(join(GUEST, "record-host-key"), [join(tmp, "hostkey.pub"), known], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const [type, key] = pub.split(" ");
    expect(readFileSync(known, "utf8")).toBe(`other.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOther\n${HOST_KEY_ALIAS} ${type} ${key}\n`);
    // OpenSSH finds it under the alias (what ssh -o HostKeyAlias=macos-runner-guest looks up).
    const found = spawnSync("ssh-keygen", ["-F", HOST_KEY_ALIAS, "-f", known], { encoding: "utf8" });
    expect(found.status).toBe(0);
    expect(found.stdout).toContain(key!);
  });

  test("--add keeps the alias's other keys (an old image still in service), without duplicating its own", () => {
    const known = join(tmp, "add", "known_hosts");
    mkdirSync(join(tmp, "add"));
    writeFileSync(known, `${HOST_KEY_ALIAS} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOld\n`);
    const pub = generateEd25519(join(tmp, "newkey"), "root@image");
    for (let i = 0; i < 2; i++) expect(spawnSync(join(GUEST, "record-host-key"), ["--add", join(tmp, "newkey.pub"), known]).status).toBe(0);
    expect(readFileSync(known, "utf8")).toBe(`${HOST_KEY_ALIAS} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOld\n${HOST_KEY_ALIAS} ${pub.split(" ").slice(0, 2).join(" ")}\n`);
  });

  test("refuses what is not a public key, and a missing file", () => {
    writeFileSync(join(tmp, "not-a-key.pub"), "-----BEGIN OPENSSH PRIVATE KEY-----\n");
    const bad = spawnSync(join(GUEST, "record-host-key"), [join(tmp, "not-a-key.pub"), join(tmp, "kh")], { encoding: "utf8" });
    expect(bad.status).toBe(65);
    expect(bad.stderr).toContain("is not an SSH public key");
    const missing = spawnSync(join(GUEST, "record-host-key"), [join(tmp, "nope.pub"), join(tmp, "kh")], { encoding: "utf8" });
    expect(missing.status).toBe(66);
  });
});

describe("push", () => {
  test("pushes the built VM with the runner version and its release date as labels", () => {
    const guest = join(tmp, "guest-copy");
    mkdirSync(join(guest, "output"), { recursive: true });
    writeFileSync(join(guest, "push"), readFileSync(join(GUEST, "push")));
    chmodSync(join(guest, "push"), 0o755);
    writeFileSync(join(guest, "output", "image.env"), "VM_NAME=macos-runner-sequoia\nRUNNER_VERSION=2.332.0\n");
    // tart and the releases API at the process boundary: a tart that records its argv, a release on disk.
    const bin = join(tmp, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "tart"), `#!/bin/sh\nprintf '%s\\n' "$@" > ${join(tmp, "tart-argv")}\n`);
    chmodSync(join(bin, "tart"), 0o755);
    mkdirSync(join(tmp, "releases", "tags"), { recursive: true });
    writeFileSync(join(tmp, "releases", "tags", "v2.332.0"), '{"tag_name": "v2.332.0", "published_at": "2026-02-20T10:00:00Z"}');
    const r = spawnSync(join(guest, "push"), ["reg.example.com/macos-runner:sequoia", "--insecure"], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, RUNNER_RELEASES_URL: `file://${join(tmp, "releases")}` },
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const argv = readFileSync(join(tmp, "tart-argv"), "utf8").trim().split("\n");
    expect(argv.slice(0, 9)).toEqual([
      "push", "macos-runner-sequoia", "reg.example.com/macos-runner:sequoia", "--insecure",
      "--label", "dev.macos-runner.runner-version=2.332.0",
      "--label", "dev.macos-runner.runner-release-date=2026-02-20T10:00:00Z",
      "--label",
    ]);
    expect(argv[9]).toMatch(/^org\.opencontainers\.image\.created=\d{4}-\d\d-\d\dT/);
    expect(basename(argv[1]!)).toBe("macos-runner-sequoia");
  });
});
