import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ConfigError, loadConfig, parseConfig, parseDuration, resolveConfigPath } from "../lib/config/index.ts";
import { exitCode } from "../lib/core/errors.ts";
import { APP_KEY_PEM } from "./fixtures/app-key.ts";

const FIXTURES = join(import.meta.dir, "fixtures", "config");

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A fresh HOME and config directory holding the files a minimal config names. */
function world() {
  const root = mkdtempSync(join(tmpdir(), "config-test-"));
  roots.push(root);
  const home = join(root, "home");
  const dir = join(root, "etc");
  const file = (path: string, mode = 0o600, content = "x\n") => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
    chmodSync(path, mode);
    return path;
  };
  file(join(dir, "pat"));
  file(join(dir, "key"));
  file(join(dir, "known_hosts"), 0o644);
  mkdirSync(home, { recursive: true });
  const env = { HOME: home };
  const configFile = join(dir, "config.yml");
  return {
    root,
    home,
    dir,
    env,
    file,
    appKey: (path: string) => file(path, 0o600, APP_KEY_PEM),
    configFile,
    parse: (yaml: string, e: NodeJS.ProcessEnv = env) => parseConfig(yaml, { file: configFile, env: e }),
    error: (yaml: string, e: NodeJS.ProcessEnv = env) => catchConfigError(() => parseConfig(yaml, { file: configFile, env: e })),
  };
}

function catchConfigError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError, got none");
}

const MINIMAL = `github:
  url: https://github.com/acme
  token_path: pat
image:
  ref: macos-runner:sequoia
vm:
  ssh:
    private_key_path: key
    known_hosts_path: known_hosts
`;

/**
 * MINIMAL with one top-level section replaced or added, always at the end:
 * a replaced github: starts on line 7, image: on 8, vm: on 6; an added one on 10.
 */
function withSection(name: string, body: string): string {
  const sections = MINIMAL.split(/^(?=\S)/m).filter((s) => !s.startsWith(`${name}:`));
  return [...sections, `${name}:\n${body}`].join("");
}

/** Asserts the whole message of a file with exactly one problem. */
function expectOneProblem(w: ReturnType<typeof world>, yaml: string, problem: string) {
  const err = w.error(yaml);
  expect(err.message).toBe(`config ${w.configFile} has 1 problem:\n  ${problem}`);
  return err;
}

describe("a valid config", () => {
  test("reads every field, expands ~ and resolves relative paths against the config's directory", () => {
    const w = world();
    copyFileSync(join(FIXTURES, "full.yml"), w.configFile);
    w.appKey(join(w.home, "app.pem"));
    w.file(join(w.dir, "secrets", "registry-password"));
    w.file(join(w.dir, "secrets", "ssh-key"));

    const config = loadConfig({ path: w.configFile, env: w.env });

    expect(config).toEqual({
      file: w.configFile,
      github: {
        url: "https://github.com/acme",
        apiUrl: "https://api.github.com",
        scope: { kind: "org", org: "acme" },
        auth: { kind: "app", appId: 123456, installationId: 789, privateKeyPath: join(w.home, "app.pem") },
      },
      runner: {
        namePrefix: "acme-mac",
        labels: ["self-hosted", "macOS", "ARM64", "xcode-16"],
        group: "Builders",
        workFolder: "work",
        jobTimeoutMs: 5_400_000,
        listenTimeoutMs: 90_000,
        exitTimeoutMs: 30_000,
      },
      image: {
        ref: "registry.example.com/macos-runner:sequoia-xcode16",
        insecure: true,
        username: "ci",
        passwordPath: join(w.dir, "secrets", "registry-password"),
        minFreeGb: 80,
        pullIntervalMs: 600_000,
        runnerReleasesUrl: "https://mirror.example.com/repos/actions/runner/releases",
      },
      vm: {
        cpu: 4,
        memoryMb: 8192,
        bootTimeoutMs: 90_000,
        start: "snapshot",
        transport: "exec",
        nextVmMaxAgeMs: 1_800_000,
        reuseIdle: false,
        idleReuseMaxMs: 1_200_000,
        ssh: { user: "runner", port: 2222, privateKeyPath: join(w.dir, "secrets", "ssh-key"), knownHostsPath: join(w.dir, "known_hosts") },
      },
      host: {
        id: "mini-07",
        slots: 1,
        tartPath: "/opt/homebrew/bin/tart",
        stateDir: join(w.home, "state"),
        logDir: join(w.dir, "logs"),
        dhcpLeasesPath: "/private/var/db/dhcpd_leases",
        backoffInitialMs: 5_000,
        backoffMaxMs: 120_000,
      },
      metrics: { textfileDir: "/opt/homebrew/var/node_exporter/textfile" },
    });
  });

  test("applies the defaults for everything left out", () => {
    const w = world();
    const config = w.parse(MINIMAL);
    expect(config.github).toEqual({
      url: "https://github.com/acme",
      apiUrl: "https://api.github.com",
      scope: { kind: "org", org: "acme" },
      auth: { kind: "pat", tokenPath: join(w.dir, "pat") },
    });
    expect(config.runner).toEqual({
      namePrefix: "macos-runner",
      labels: ["self-hosted", "macOS", "ARM64"],
      group: "Default",
      workFolder: "_work",
      jobTimeoutMs: 6 * 3_600_000,
      listenTimeoutMs: 120_000,
      exitTimeoutMs: 60_000,
    });
    expect(config.image).toEqual({
      ref: "macos-runner:sequoia",
      insecure: false,
      pullIntervalMs: 300_000,
      runnerReleasesUrl: "https://api.github.com/repos/actions/runner/releases",
    });
    expect(config.vm).toEqual({
      bootTimeoutMs: 180_000,
      start: "cold",
      transport: "exec",
      nextVmMaxAgeMs: 3_600_000,
      reuseIdle: true,
      idleReuseMaxMs: 3_600_000,
      ssh: { user: "admin", port: 22, privateKeyPath: join(w.dir, "key"), knownHostsPath: join(w.dir, "known_hosts") },
    });
    expect(config.host).toEqual({
      slots: 2,
      tartPath: "tart",
      stateDir: join(w.home, "Library/Application Support/macos-runner"),
      logDir: join(w.home, "Library/Logs/macos-runner"),
      dhcpLeasesPath: "/var/db/dhcpd_leases",
      backoffInitialMs: 10_000,
      backoffMaxMs: 600_000,
    });
    // toEqual passes over keys set to undefined; optional keys left out must be absent.
    expect(Object.keys(config.image)).not.toContain("minFreeGb");
    expect(Object.keys(config.host)).not.toContain("id");
    expect(config.metrics).toBeUndefined();
  });

  test("an empty value counts as left out, and aliases are followed", () => {
    const w = world();
    const config = w.parse(`${MINIMAL}runner:\n  labels:\n  group: &g Builders\nhost:\n  state_dir: *g\n`);
    expect(config.runner.labels).toEqual(["self-hosted", "macOS", "ARM64"]);
    expect(config.host.stateDir).toBe(join(w.dir, "Builders"));
  });

  test.each([
    ["https://github.com/acme", "https://github.com/acme", "https://api.github.com", { kind: "org", org: "acme" }],
    ["https://github.com/acme/app/", "https://github.com/acme/app", "https://api.github.com", { kind: "repo", owner: "acme", repo: "app" }],
    ["https://github.com/enterprises/big-co", "https://github.com/enterprises/big-co", "https://api.github.com", { kind: "enterprise", enterprise: "big-co" }],
    ["https://GHE.example.com/acme", "https://ghe.example.com/acme", "https://ghe.example.com/api/v3", { kind: "org", org: "acme" }],
    ["https://octo.ghe.com/acme", "https://octo.ghe.com/acme", "https://api.octo.ghe.com", { kind: "org", org: "acme" }],
    ["http://127.0.0.1:8080/acme/app", "http://127.0.0.1:8080/acme/app", "http://127.0.0.1:8080/api/v3", { kind: "repo", owner: "acme", repo: "app" }],
  ])("github.url %s: scope and default api_url", (url, normalised, apiUrl, scope) => {
    const w = world();
    const github = w.parse(MINIMAL.replace("https://github.com/acme", url)).github;
    expect(github.url).toBe(normalised);
    expect(github.apiUrl).toBe(apiUrl);
    expect(github.scope).toEqual(scope as never);
  });

  test("an enterprise with a PAT is fine; api_url given wins over the default", () => {
    const w = world();
    const github = w.parse(withSection("github", "  url: https://ghe.example.com/enterprises/acme\n  api_url: http://127.0.0.1:9000/api/\n  token_path: pat\n")).github;
    expect(github.scope).toEqual({ kind: "enterprise", enterprise: "acme" });
    expect(github.apiUrl).toBe("http://127.0.0.1:9000/api");
  });

  test("tart_path: a bare name stays for PATH lookup, a relative path resolves", () => {
    const w = world();
    expect(w.parse(`${MINIMAL}host:\n  tart_path: tart-dev\n`).host.tartPath).toBe("tart-dev");
    expect(w.parse(`${MINIMAL}host:\n  tart_path: bin/tart\n`).host.tartPath).toBe(join(w.dir, "bin/tart"));
  });
});

describe("bad input is reported with key path and line", () => {
  test("a ConfigError with exit code 78 and structured problems", () => {
    const w = world();
    const err = w.error(withSection("host", "  slots: 3\n"));
    expect(err.exitCode).toBe(exitCode("config"));
    expect(err.problems).toEqual([{ path: "host.slots", line: 11, message: "must be 1 or 2 (Apple's macOS licence allows at most 2 macOS VMs per host), got 3" }]);
  });

  test("the brief's example: app.id that is not a number", () => {
    const w = world();
    w.appKey(join(w.dir, "app.pem"));
    expectOneProblem(w, withSection("github", "  url: https://github.com/acme\n  app:\n    id: abc\n    private_key_path: app.pem\n"), `line 10: github.app.id: must be a positive integer, got "abc"`);
  });

  test.each([
    ["slots as a word", "host", "  slots: two\n", `line 11: host.slots: must be 1 or 2 (Apple's macOS licence allows at most 2 macOS VMs per host), got "two"`],
    ["slots quoted", "host", '  slots: "2"\n', `line 11: host.slots: must be 1 or 2 (Apple's macOS licence allows at most 2 macOS VMs per host), got "2" (a string; remove the quotes)`],
    ["backoff cap below start", "host", "  backoff_initial: 1m\n  backoff_max: 30s\n", "line 12: host.backoff_max: must be at least host.backoff_initial (60000 ms)"],
    ["slots zero", "host", "  slots: 0\n", `line 11: host.slots: must be 1 or 2 (Apple's macOS licence allows at most 2 macOS VMs per host), got 0`],
    ["cpu zero", "vm", "  cpu: 0\n  ssh: { private_key_path: key, known_hosts_path: known_hosts }\n", "line 7: vm.cpu: must be a positive integer, got 0"],
    ["memory_mb negative", "vm", "  memory_mb: -1\n  ssh: { private_key_path: key, known_hosts_path: known_hosts }\n", "line 7: vm.memory_mb: must be a positive integer, got -1"],
    ["port out of range", "vm", "  ssh: { port: 70000, private_key_path: key, known_hosts_path: known_hosts }\n", "line 7: vm.ssh.port: must be an integer from 1 to 65535, got 70000"],
    ["insecure as yes", "image", "  ref: x\n  insecure: yes\n", `line 10: image.insecure: must be true or false, got "yes"`],
    ["a section that is a string", "host", "  slots: 1\nmetrics: /var/metrics\n", `line 12: metrics: must be a mapping of textfile_dir, got "/var/metrics"`],
    ["group as a number", "runner", "  group: 7\n", "line 11: runner.group: must be a string, got 7 (a number; quote it if you mean the text)"],
    ["an empty string", "runner", '  work_folder: ""\n', "line 11: runner.work_folder: must not be empty"],
    ["image.ref with a space", "image", "  ref: macos runner\n", `line 9: image.ref: must not contain spaces, got "macos runner"`],
  ])("wrong type or range: %s", (_name, section, body, problem) => {
    const w = world();
    expectOneProblem(w, withSection(section, body), problem);
  });

  test("a YAML syntax error names its line and nothing else is checked", () => {
    const w = world();
    const err = expectOneProblem(w, `${MINIMAL}host:\n\tslots: 1\n`, "line 11: invalid YAML: Tabs are not allowed as indentation");
    expect(err.problems[0]).toEqual({ path: "", line: 11, message: "invalid YAML: Tabs are not allowed as indentation" });
  });

  test("a duplicate key is a YAML error with its line", () => {
    const w = world();
    expectOneProblem(w, `${MINIMAL}host:\n  slots: 1\n  slots: 2\n`, "line 12: invalid YAML: Map keys must be unique");
  });

  test.each([
    ["empty", ""],
    ["only comments", "# nothing yet\n\n"],
  ])("an %s file", (_name, text) => {
    const w = world();
    expectOneProblem(w, text, "the file is empty; it needs at least the github: and image: sections");
  });

  test("a top level that is not a mapping", () => {
    const w = world();
    expectOneProblem(w, "- github\n- image\n", "line 1: the top level must be a mapping of sections (github:, runner:, image:, vm:, host:, metrics:), got a list");
  });

  test("unknown keys: with a suggestion when one is close, else the list of known keys", () => {
    const w = world();
    const err = w.error(`${MINIMAL}runner:\n  namePrefix: x\n  lables: [a]\n  colour: red\nhsot:\n  slots: 1\n`);
    expect(err.problems).toEqual([
      { path: "runner.namePrefix", line: 11, message: "unknown key; did you mean name_prefix?" },
      { path: "runner.lables", line: 12, message: "unknown key; did you mean labels?" },
      { path: "runner.colour", line: 13, message: "unknown key; expected one of: name_prefix, labels, group, work_folder, job_timeout, listen_timeout, exit_timeout" },
      { path: "hsot", line: 14, message: "unknown key; did you mean host?" },
    ]);
  });

  test("a secret written inline instead of a path suggests the _path key", () => {
    const w = world();
    expectOneProblem(w, withSection("image", "  ref: x\n  password: hunter2\n"), "line 10: image.password: unknown key; did you mean password_path?");
  });

  test("missing required keys are named", () => {
    const w = world();
    const err = w.error("runner:\n  group: Default\n");
    expect(err.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      "github.url: missing (required); e.g. https://github.com/acme (org), https://github.com/acme/app (repo) or https://github.com/enterprises/acme",
      "github: needs github.app (a GitHub App: id and private_key_path) or github.token_path (a file holding a PAT)",
      "image.ref: missing (required); the golden VM image, e.g. registry.example.com/macos-runner:sequoia, or a local VM name",
    ]);
    expect(err.problems.every((p) => p.line === undefined)).toBe(true);
  });

  describe("vm.next_vm_max_age, and preclone_max_age, its old name", () => {
    const NO_VM = MINIMAL.split("vm:\n")[0]!;

    test("the new name, the old name (an upgraded host's config) and neither (1h) all load", () => {
      const w = world();
      expect(w.parse(`${NO_VM}vm:\n  next_vm_max_age: 30m\n`).vm.nextVmMaxAgeMs).toBe(1_800_000);
      expect(w.parse(`${NO_VM}vm:\n  preclone_max_age: 20m\n`).vm.nextVmMaxAgeMs).toBe(1_200_000);
      expect(w.parse(NO_VM).vm.nextVmMaxAgeMs).toBe(3_600_000);
    });

    test("both set is refused at the old name's line", () => {
      const w = world();
      expectOneProblem(w, `${NO_VM}vm:\n  next_vm_max_age: 30m\n  preclone_max_age: 20m\n`,
        "line 8: vm.preclone_max_age: is the old name of vm.next_vm_max_age, which is set too; remove preclone_max_age");
    });
  });

  describe("vm.ssh is needed by vm.transport ssh only", () => {
    const NO_VM = MINIMAL.split("vm:\n")[0]!;

    test("vm.transport exec (the default) without vm.ssh loads, and the config has no ssh settings", () => {
      const w = world();
      for (const yaml of [NO_VM, `${NO_VM}vm:\n  transport: exec\n`]) {
        const config = w.parse(yaml);
        expect(config.vm.transport).toBe("exec");
        expect(Object.keys(config.vm)).not.toContain("ssh");
      }
    });

    test("vm.transport ssh without vm.ssh is refused at the transport's line, naming the keys it needs", () => {
      const w = world();
      const err = expectOneProblem(
        w,
        `${NO_VM}vm:\n  cpu: 2\n  transport: ssh\n`,
        "line 8: vm.transport: ssh needs a vm.ssh section with private_key_path (the private key whose public half the golden image authorises) " +
          "and known_hosts_path (a known_hosts file holding the golden image's host key)",
      );
      expect(err.problems[0]!.path).toBe("vm.transport");
    });

    test("a vm.ssh section needs both key paths, whatever the transport", () => {
      const w = world();
      for (const transport of ["exec", "ssh"]) {
        expectOneProblem(
          w,
          `${NO_VM}vm:\n  transport: ${transport}\n  ssh:\n    private_key_path: key\n`,
          "vm.ssh.known_hosts_path: missing (required); a known_hosts file holding the golden image's host key",
        );
      }
    });

    test("vm.transport ssh with vm.ssh loads", () => {
      const w = world();
      const config = w.parse(MINIMAL.replace("vm:\n", "vm:\n  transport: ssh\n"));
      expect(config.vm.ssh).toEqual({ user: "admin", port: 22, privateKeyPath: join(w.dir, "key"), knownHostsPath: join(w.dir, "known_hosts") });
    });
  });

  test("several problems are reported together, in file order", () => {
    const w = world();
    const yaml = `github:
  url: https://github.com/acme/app/issues
  token_path: pat
image:
  ref: x
  insecure: "false"
vm:
  cpu: four
  ssh: { private_key_path: key, known_hosts_path: known_hosts }
host:
  slots: 3
`;
    const err = w.error(yaml);
    expect(err.message).toBe(
      [
        `config ${w.configFile} has 4 problems:`,
        `  line 2: github.url: must be https://HOST/ORG, https://HOST/OWNER/REPO or https://HOST/enterprises/NAME, got "https://github.com/acme/app/issues" (too many path parts)`,
        `  line 6: image.insecure: must be true or false, got "false" (a string; remove the quotes)`,
        `  line 8: vm.cpu: must be a positive integer, got "four"`,
        `  line 11: host.slots: must be 1 or 2 (Apple's macOS licence allows at most 2 macOS VMs per host), got 3`,
      ].join("\n"),
    );
  });
});

describe("github", () => {
  const forms = "must be https://HOST/ORG, https://HOST/OWNER/REPO or https://HOST/enterprises/NAME";
  test.each([
    ["github.com/acme", `${forms}, got "github.com/acme" (not a URL)`],
    ["ftp://github.com/acme", `${forms}, got "ftp://github.com/acme" (scheme ftp is not http(s))`],
    ["https://github.com", `${forms}, got "https://github.com" (no org, repo or enterprise in the path)`],
    ["https://github.com/a/b/c", `${forms}, got "https://github.com/a/b/c" (too many path parts)`],
    ["https://github.com/acme?tab=repos", `${forms}, got "https://github.com/acme?tab=repos" (no query or fragment allowed)`],
    ["https://github.com/enterprises", `${forms}, got "https://github.com/enterprises" (no enterprise name after /enterprises)`],
    ["https://github.com/acme/app.git", `${forms}, got "https://github.com/acme/app.git" (that is a clone URL; drop the .git)`],
    ["https://github.com/ac%20me", `${forms}, got "https://github.com/ac%20me" (path parts may hold only letters, digits, '.', '_' and '-')`],
  ])("github.url %s is refused", (url, message) => {
    const w = world();
    expectOneProblem(w, MINIMAL.replace("https://github.com/acme", url), `line 2: github.url: ${message}`);
  });

  test("credentials in github.url are refused without echoing them", () => {
    const w = world();
    const err = expectOneProblem(w, MINIMAL.replace("https://github.com/acme", "https://bot:s3cret@github.com/acme"), "line 2: github.url: must not hold credentials; they belong in a secret file (github.app or github.token_path)");
    expect(err.message).not.toContain("s3cret");
  });

  test("api_url must be an http(s) URL", () => {
    const w = world();
    expectOneProblem(w, withSection("github", "  url: https://github.com/acme\n  api_url: api.github.com\n  token_path: pat\n"), `line 9: github.api_url: must be an http(s) URL such as https://ghe.example.com/api/v3, got "api.github.com" (not a URL)`);
  });

  test("both app and token_path", () => {
    const w = world();
    w.appKey(join(w.dir, "app.pem"));
    expectOneProblem(w, withSection("github", "  url: https://github.com/acme\n  app: { id: 1, private_key_path: app.pem }\n  token_path: pat\n"), "line 10: github.token_path: set either github.app or github.token_path, not both");
  });

  test("neither app nor token_path", () => {
    const w = world();
    expectOneProblem(w, withSection("github", "  url: https://github.com/acme\n"), "line 7: github: needs github.app (a GitHub App: id and private_key_path) or github.token_path (a file holding a PAT)");
  });

  test("an app for an enterprise is refused", () => {
    const w = world();
    w.appKey(join(w.dir, "app.pem"));
    expectOneProblem(
      w,
      withSection("github", "  url: https://github.com/enterprises/acme\n  app:\n    id: 1\n    private_key_path: app.pem\n"),
      "line 9: github.app: GitHub Apps cannot manage enterprise runners; use github.token_path with a classic PAT (scope manage_runners:enterprise)",
    );
  });

  test("installation_id must be a positive integer; the app needs id and key", () => {
    const w = world();
    const err = w.error(withSection("github", "  url: https://github.com/acme\n  app:\n    installation_id: 0\n"));
    expect(err.problems).toEqual([
      { path: "github.app.installation_id", line: 10, message: "must be a positive integer, got 0" },
      { path: "github.app.id", message: "missing (required); the GitHub App's numeric id" },
      { path: "github.app.private_key_path", message: "missing (required); the App's private key file (.pem)" },
    ]);
  });

  test("a repo URL has no runner groups", () => {
    const w = world();
    expectOneProblem(w, `${MINIMAL.replace("acme", "acme/app")}runner:\n  group: Builders\n`, "line 11: runner.group: a repository has no runner groups; remove runner.group (or set it to Default) for a repo URL");
  });
});

describe("runner", () => {
  test.each([
    ["an empty list", "[]", "line 11: runner.labels: must have 1 to 100 entries, got 0"],
    ["more than 100", `[${Array.from({ length: 101 }, (_, i) => `l${i}`).join(", ")}]`, "line 11: runner.labels: must have 1 to 100 entries, got 101"],
    ["not a list", "self-hosted,macOS", `line 11: runner.labels: must be a list of strings, e.g. [a, b], got "self-hosted,macOS"`],
    ["a comma in a label", '[self-hosted, "macOS,ARM64"]', `line 11: runner.labels[1]: "macOS,ARM64" contains a comma; the runner splits labels on commas, so give each label as its own list entry`],
    ["an empty label", '[self-hosted, ""]', "line 11: runner.labels[1]: must not be empty"],
    ["a label with spaces around it", '[" macOS"]', `line 11: runner.labels[0]: " macOS" has leading or trailing spaces`],
    ["a label over 256 characters", `[${"a".repeat(257)}]`, "line 11: runner.labels[0]: is 257 characters; labels are at most 256"],
    ["a duplicate, case-insensitive", "[self-hosted, macOS, MACOS]", `line 11: runner.labels[2]: "MACOS" repeats "macOS" (labels are case-insensitive)`],
    ["a number", "[self-hosted, 15]", "line 11: runner.labels[1]: must be a string, got 15 (a number; quote it if you mean the text)"],
  ])("labels: %s", (_name, labels, problem) => {
    const w = world();
    expectOneProblem(w, `${MINIMAL}runner:\n  labels: ${labels}\n`, problem);
  });

  test("a label item in block style reports its own line", () => {
    const w = world();
    expectOneProblem(w, `${MINIMAL}runner:\n  labels:\n    - self-hosted\n    - Self-Hosted\n`, `line 13: runner.labels[1]: "Self-Hosted" repeats "self-hosted" (labels are case-insensitive)`);
  });

  const prefixRule = "must be 1 to 32 of A-Z a-z 0-9 . _ - (runner names are <prefix>-<host>-<slot>-<random>, at most 64 characters)";
  test.each([
    ["acme mac", `${prefixRule}, got "acme mac"`],
    ["acme/mac", `${prefixRule}, got "acme/mac"`],
    ["a".repeat(33), `${prefixRule}, got "${"a".repeat(33)}"`],
  ])("name_prefix %j is refused", (prefix, message) => {
    const w = world();
    expectOneProblem(w, `${MINIMAL}runner:\n  name_prefix: "${prefix}"\n`, `line 11: runner.name_prefix: ${message}`);
  });

  test("name_prefix of 32 allowed characters is accepted", () => {
    const w = world();
    const prefix = `a.b_c-${"x".repeat(26)}`;
    expect(w.parse(`${MINIMAL}runner:\n  name_prefix: ${prefix}\n`).runner.namePrefix).toBe(prefix);
  });

  const forms = "must be a duration such as 90s, 3m, 6h or 1h30m (units ms, s, m, h)";
  test.each([
    ["0s", `must be longer than zero, got "0s"`],
    ["0h0m", `must be longer than zero, got "0h0m"`],
    ["-5m", `${forms}, got "-5m"`],
    ["six hours", `${forms}, got "six hours"`],
    ["3600", `${forms}, got 3600 (a number; add a unit, e.g. 3600s)`],
  ])("job_timeout %s is refused", (value, message) => {
    const w = world();
    expectOneProblem(w, `${MINIMAL}runner:\n  job_timeout: ${value}\n`, `line 11: runner.job_timeout: ${message}`);
  });
});

describe("files", () => {
  test("a world-readable key is refused, naming the file, its mode and the fix", () => {
    const w = world();
    chmodSync(join(w.dir, "key"), 0o644);
    const err = expectOneProblem(w, MINIMAL, `line 8: vm.ssh.private_key_path: ${join(w.dir, "key")} is mode 0644; secrets must be 0600 (chmod 600 ${join(w.dir, "key")})`);
    expect(err.problems[0]?.path).toBe("vm.ssh.private_key_path");
  });

  test("a group-readable token in a path with a space gets a quoted chmod", () => {
    const w = world();
    const pat = w.file(join(w.dir, "my secrets", "pat"), 0o640);
    expectOneProblem(w, MINIMAL.replace("token_path: pat", "token_path: my secrets/pat"), `line 3: github.token_path: ${pat} is mode 0640; secrets must be 0600 (chmod 600 '${pat}')`);
  });

  test("secrets must exist and be regular files", () => {
    const w = world();
    mkdirSync(join(w.dir, "keydir"));
    const err = w.error(MINIMAL.replace("token_path: pat", "token_path: nope").replace("private_key_path: key", "private_key_path: keydir"));
    expect(err.problems).toEqual([
      { path: "github.token_path", line: 3, message: `${join(w.dir, "nope")} does not exist; create it or fix the path` },
      { path: "vm.ssh.private_key_path", line: 8, message: `${join(w.dir, "keydir")} is a directory; it must be a file` },
    ]);
  });

  test("a secret pasted where its path belongs is refused without echoing it", () => {
    const w = world();
    const token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789";
    const err = expectOneProblem(w, MINIMAL.replace("token_path: pat", `token_path: ${token}`), "line 3: github.token_path: holds what looks like a secret itself, not a path; put the secret in a file with mode 0600 and give that file's path");
    expect(err.message).not.toContain(token);
  });

  test("known_hosts must exist but may be world-readable", () => {
    const w = world();
    expectOneProblem(w, MINIMAL.replace("known_hosts_path: known_hosts", "known_hosts_path: ~/.ssh/known_hosts"), `line 9: vm.ssh.known_hosts_path: ${join(w.home, ".ssh/known_hosts")} does not exist; create it or fix the path`);
  });

  test("image.username and image.password_path go together", () => {
    const w = world();
    expectOneProblem(w, withSection("image", "  ref: x\n  username: ci\n"), "line 10: image.username: image.username and image.password_path go together; set both or neither");
    w.file(join(w.dir, "registry-password"));
    expectOneProblem(w, withSection("image", "  ref: x\n  password_path: registry-password\n"), "line 10: image.password_path: image.username and image.password_path go together; set both or neither");
  });

  test("pull_interval at least a minute; runner_releases_url a URL", () => {
    const w = world();
    expectOneProblem(w, withSection("image", "  ref: x\n  pull_interval: 30s\n"), "line 10: image.pull_interval: must be at least 1m (launchd starts pull on this interval)");
    expect(w.error(withSection("image", "  ref: x\n  runner_releases_url: ftp://x\n")).message).toContain("image.runner_releases_url: must be an http(s) URL");
  });

  test("metrics needs textfile_dir when the section is there", () => {
    const w = world();
    expectOneProblem(w, `${MINIMAL}metrics:\n  textfile_dir: []\n`, "line 11: metrics.textfile_dir: must be a string, got a list");
    expect(w.error(`${MINIMAL}metrics:\n  textfile: /x\n`).problems).toEqual([
      { path: "metrics.textfile", line: 11, message: "unknown key; did you mean textfile_dir?" },
      { path: "metrics.textfile_dir", message: "missing (required); the node_exporter textfile collector directory" },
    ]);
    expect(w.parse(`${MINIMAL}metrics:\n  textfile_dir: ~/textfile\n`).metrics).toEqual({ textfileDir: join(w.home, "textfile") });
  });

  test("~ without HOME, and ~user, are errors naming the key", () => {
    const w = world();
    const err = w.error(`${MINIMAL}host:\n  log_dir: ~/logs\n  tart_path: ~bob/tart\n`, {});
    expect(err.problems).toEqual([
      { path: "host.log_dir", line: 11, message: "~/logs starts with ~ but HOME is not set; use an absolute path" },
      { path: "host.tart_path", line: 12, message: "~bob/tart: ~user paths are not supported; use ~/... or an absolute path" },
      { path: "host.state_dir", message: "defaults to ~/Library/Application Support/macos-runner, but HOME is not set; set HOME or give host.state_dir as an absolute path" },
    ]);
  });
});

describe("values that cannot work are refused when the config is read", () => {
  const timerRule = "must be at most 596h31m23s647ms (a timer waits at most 2^31-1 ms, about 24.8 days)";
  test.each([
    ["runner", "job_timeout"],
    ["runner", "listen_timeout"],
    ["runner", "exit_timeout"],
    ["host", "backoff_initial"],
    ["host", "backoff_max"],
    ["image", "pull_interval"],
    ["vm", "next_vm_max_age"],
  ])("%s.%s longer than a timer can wait", (section, key) => {
    const w = world();
    const body = section === "image" ? "  ref: x\n" : section === "vm" ? "  ssh: { private_key_path: key, known_hosts_path: known_hosts }\n" : "";
    const yaml = withSection(section, `${body}  ${key}: 1000h\n`);
    const line = yaml.split("\n").indexOf(`  ${key}: 1000h`) + 1;
    expectOneProblem(w, yaml, `line ${line}: ${section}.${key}: ${timerRule}, got "1000h"`);
  });

  test("the longest timer is accepted; one millisecond more, or a number too large to count, is not", () => {
    const w = world();
    expect(w.parse(`${MINIMAL}runner:\n  job_timeout: 596h31m23s647ms\n`).runner.jobTimeoutMs).toBe(2 ** 31 - 1);
    expectOneProblem(w, `${MINIMAL}runner:\n  job_timeout: 596h31m23s648ms\n`, `line 11: runner.job_timeout: ${timerRule}, got "596h31m23s648ms"`);
    expectOneProblem(w, `${MINIMAL}runner:\n  job_timeout: 9999999999999999h\n`, `line 11: runner.job_timeout: ${timerRule}, got "9999999999999999h"`);
  });

  test("vm.boot_timeout fits tart ip --wait (65535 s)", () => {
    const w = world();
    const vm = (t: string) => withSection("vm", `  boot_timeout: ${t}\n  ssh: { private_key_path: key, known_hosts_path: known_hosts }\n`);
    expect(w.parse(vm("18h12m15s")).vm.bootTimeoutMs).toBe(65_535_000);
    expectOneProblem(w, vm("20h"), `line 7: vm.boot_timeout: must be at most 18h12m15s (tart ip --wait takes at most 65535 seconds), got "20h"`);
    expectOneProblem(w, vm("18h12m15s1ms"), `line 7: vm.boot_timeout: must be at most 18h12m15s (tart ip --wait takes at most 65535 seconds), got "18h12m15s1ms"`);
  });

  test("a config file that is a FIFO or a device is refused without blocking on it", () => {
    const w = world();
    const fifo = join(w.dir, "config.fifo");
    execFileSync("mkfifo", [fifo]);
    // A blocking read of a FIFO with no writer would never return: this test would time out.
    expect(catchConfigError(() => loadConfig({ path: fifo, env: w.env })).message).toBe(`config file ${fifo} is a FIFO (named pipe); the path came from --config; check it`);
    expect(catchConfigError(() => loadConfig({ path: "/dev/zero", env: w.env })).message).toBe("config file /dev/zero is a device; the path came from --config; check it");
  });

  test("a secret path that is a FIFO or a device is refused", () => {
    const w = world();
    execFileSync("mkfifo", ["-m", "600", join(w.dir, "pat.fifo")]);
    expectOneProblem(w, MINIMAL.replace("token_path: pat", "token_path: pat.fifo"), `line 3: github.token_path: ${join(w.dir, "pat.fifo")} is a FIFO (named pipe); it must be a file`);
    expectOneProblem(w, MINIMAL.replace("private_key_path: key", "private_key_path: /dev/null"), "line 8: vm.ssh.private_key_path: /dev/null is a device; it must be a file");
  });

  describe("github.app.private_key_path must hold the App's PEM private key", () => {
    const app = "  url: https://github.com/acme\n  app:\n    id: 1\n    private_key_path: app.pem\n";
    const fix = "put the App's private key there (the .pem file from Generate a private key on the App's settings page)";

    test("a real key is accepted", () => {
      const w = world();
      w.appKey(join(w.dir, "app.pem"));
      expect(w.parse(withSection("github", app)).github.auth).toEqual({ kind: "app", appId: 1, privateKeyPath: join(w.dir, "app.pem") });
    });

    test("an empty file", () => {
      const w = world();
      w.file(join(w.dir, "app.pem"), 0o600, "\n");
      expectOneProblem(w, withSection("github", app), `line 11: github.app.private_key_path: ${join(w.dir, "app.pem")} (github.app.private_key_path) is empty; ${fix}`);
    });

    test("garbage, even between PEM markers, is refused without echoing it", () => {
      const w = world();
      const garbage = "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWJ1dC1ub3QtYS1rZXk=\n-----END RSA PRIVATE KEY-----\n";
      w.file(join(w.dir, "app.pem"), 0o600, garbage);
      const err = expectOneProblem(w, withSection("github", app), `line 11: github.app.private_key_path: ${join(w.dir, "app.pem")} does not hold a PEM private key; ${fix}`);
      expect(err.message).not.toContain("c2VjcmV0");
    });

    test("a key that is not RSA", () => {
      const w = world();
      const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      w.file(join(w.dir, "app.pem"), 0o600, ec);
      expectOneProblem(w, withSection("github", app), `line 11: github.app.private_key_path: ${join(w.dir, "app.pem")} holds a key of type ec, but GitHub App keys are RSA; ${fix}`);
    });
  });
});

describe("keys other engineers' features read", () => {
  test.each([
    ["host.id", "host", "  id: Mini_01\n", `line 11: host.id: must be 1 to 32 of a-z 0-9 - (the host part of VM and runner names), got "Mini_01"`],
    ["host.id too long", "host", `  id: ${"a".repeat(33)}\n`, `line 11: host.id: must be 1 to 32 of a-z 0-9 - (the host part of VM and runner names), got "${"a".repeat(33)}"`],
    ["vm.transport", "vm", "  transport: vsock\n  ssh: { private_key_path: key, known_hosts_path: known_hosts }\n", `line 7: vm.transport: must be exec or ssh, got "vsock"`],
    ["vm.start", "vm", "  start: warm\n  ssh: { private_key_path: key, known_hosts_path: known_hosts }\n", `line 7: vm.start: must be cold or snapshot, got "warm"`],
    ["image.min_free_gb", "image", "  ref: x\n  min_free_gb: -1\n", "line 10: image.min_free_gb: must be an integer of at least 0, got -1"],
    ["image.min_free_gb quoted", "image", '  ref: x\n  min_free_gb: "50"\n', `line 10: image.min_free_gb: must be an integer of at least 0, got "50" (a string; remove the quotes)`],
    ["host.dhcp_leases_path", "host", "  dhcp_leases_path: 7\n", "line 11: host.dhcp_leases_path: must be a string, got 7 (a number; quote it if you mean the text)"],
    ["a typo of a new key", "host", "  dhcp_lease_path: /x\n", "line 11: host.dhcp_lease_path: unknown key; did you mean dhcp_leases_path?"],
  ])("%s is checked", (_name, section, body, problem) => {
    const w = world();
    expectOneProblem(w, withSection(section, body), problem);
  });

  test("host.id of 32 allowed characters, min_free_gb 0, and a relative dhcp_leases_path", () => {
    const w = world();
    const id = `mini-${"7".repeat(27)}`;
    const config = w.parse(`${MINIMAL.replace("  ref: macos-runner:sequoia\n", "  ref: macos-runner:sequoia\n  min_free_gb: 0\n")}host:\n  id: ${id}\n  dhcp_leases_path: leases\n`);
    expect(config.host.id).toBe(id);
    expect(config.image.minFreeGb).toBe(0);
    expect(config.host.dhcpLeasesPath).toBe(join(w.dir, "leases"));
  });
});

describe("finding and loading the file", () => {
  test("resolveConfigPath: --config, else $MACOS_RUNNER_CONFIG, else the default under HOME", () => {
    const env = { HOME: "/home/ci", MACOS_RUNNER_CONFIG: "/etc/macos-runner.yml" };
    expect(resolveConfigPath("/srv/flag.yml", env)).toBe("/srv/flag.yml");
    expect(resolveConfigPath("rel/flag.yml", env)).toBe(join(process.cwd(), "rel/flag.yml"));
    expect(resolveConfigPath(undefined, env)).toBe("/etc/macos-runner.yml");
    expect(resolveConfigPath(undefined, { HOME: "/home/ci", MACOS_RUNNER_CONFIG: "~/mr.yml" })).toBe("/home/ci/mr.yml");
    expect(resolveConfigPath(undefined, { HOME: "/home/ci", MACOS_RUNNER_CONFIG: "" })).toBe("/home/ci/.config/macos-runner/config.yml");
    expect(resolveConfigPath(undefined, { HOME: "/home/ci" })).toBe("/home/ci/.config/macos-runner/config.yml");
  });

  test("resolveConfigPath without HOME and no flag or env is a ConfigError", () => {
    expect(catchConfigError(() => resolveConfigPath(undefined, {})).message).toBe(
      "cannot locate the config file: HOME is not set, so the default ~/.config/macos-runner/config.yml has no meaning; pass --config PATH or set MACOS_RUNNER_CONFIG",
    );
    expect(catchConfigError(() => resolveConfigPath("~/c.yml", {})).message).toBe(
      "cannot locate the config file: ~/c.yml starts with ~ but HOME is not set; use an absolute path; the path came from --config; check it",
    );
  });

  test("loadConfig finds the file through $MACOS_RUNNER_CONFIG", () => {
    const w = world();
    writeFileSync(w.configFile, MINIMAL);
    expect(loadConfig({ env: { ...w.env, MACOS_RUNNER_CONFIG: w.configFile } }).file).toBe(w.configFile);
  });

  test("a missing file names the path and where it came from", () => {
    const w = world();
    const missing = join(w.dir, "absent.yml");
    expect(catchConfigError(() => loadConfig({ path: missing, env: w.env })).message).toBe(`config file ${missing} not found; the path came from --config; check it`);
    expect(catchConfigError(() => loadConfig({ env: { ...w.env, MACOS_RUNNER_CONFIG: missing } })).message).toBe(
      `config file ${missing} not found; the path came from $MACOS_RUNNER_CONFIG; fix it, or unset it to use ~/.config/macos-runner/config.yml`,
    );
    const err = catchConfigError(() => loadConfig({ env: w.env }));
    expect(err.message).toBe(
      `config file ${join(w.home, ".config/macos-runner/config.yml")} not found; that is the default path (neither --config nor $MACOS_RUNNER_CONFIG is set); create the file there, or pass --config PATH or set MACOS_RUNNER_CONFIG`,
    );
    expect(err.exitCode).toBe(exitCode("config"));
  });

  test("a directory given as the config file", () => {
    const w = world();
    expect(catchConfigError(() => loadConfig({ path: w.dir, env: w.env })).message).toBe(`config file ${w.dir} is a directory; the path came from --config; check it`);
  });
});

describe("parseDuration", () => {
  test.each([
    ["500ms", 500],
    ["90s", 90_000],
    ["3m", 180_000],
    ["6h", 21_600_000],
    ["1h30m", 5_400_000],
    ["1m30s250ms", 90_250],
    ["1.5s", 1_500],
    ["0s", 0],
  ])("%s = %d ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  test.each(["", "90", "s", "5x", "-5m", "1 h", " 3m", "1H", "1d", ".5s", "3m ", "1h30"])("%j is refused", (text) => {
    expect(() => parseDuration(text)).toThrow(`bad duration ${JSON.stringify(text)}: use a number with a unit (ms, s, m, h), e.g. 90s, 3m, 6h or 1h30m`);
  });

  test("a duration too long to count in milliseconds is refused", () => {
    expect(() => parseDuration("9999999999999999h")).toThrow("too long");
  });
});
