// The config file (DESIGN.md "Configuration"): one YAML file, read once per
// process. Every problem names its key path and line, and all of a file's
// problems are reported together in one ConfigError (exit 78).
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { defaultApiUrl, parseApiUrl, parseGithubUrl, type Scope } from "./config/github-url.ts";
import { commandPath, existingFile, expandPath, secretFile, type PathBase } from "./config/paths.ts";
import { ConfigError, Invalid } from "./config/problems.ts";
import { ConfigDoc, type Section } from "./config/yaml-section.ts";
import { parseDuration } from "./duration.ts";

export { ConfigError, type ConfigProblem } from "./config/problems.ts";
export { parseDuration } from "./duration.ts";

export interface Config {
  /** Absolute path of the file loaded. */
  file: string;
  github: {
    /** Normalised, no trailing slash. */
    url: string;
    apiUrl: string;
    scope: Scope;
    auth: { kind: "app"; appId: number; installationId?: number; privateKeyPath: string } | { kind: "pat"; tokenPath: string };
  };
  runner: { namePrefix: string; labels: string[]; group: string; workFolder: string; jobTimeoutMs: number; listenTimeoutMs: number; exitTimeoutMs: number };
  image: {
    ref: string;
    insecure: boolean;
    username?: string;
    passwordPath?: string;
    /** `pull` refuses below this much free disk; default: the image's uncompressed disk size + 20 GB. */
    minFreeGb?: number;
    /** How often launchd runs `pull` (StartInterval). */
    pullIntervalMs: number;
    /** actions/runner releases on the GitHub API (the runner freshness check). */
    runnerReleasesUrl: string;
  };
  vm: {
    cpu?: number;
    memoryMb?: number;
    bootTimeoutMs: number;
    start: "cold" | "snapshot";
    precloneMaxAgeMs: number;
    ssh: { user: string; port: number; privateKeyPath: string; knownHostsPath: string };
  };
  host: { slots: 1 | 2; id?: string; tartPath: string; stateDir: string; logDir: string; dhcpLeasesPath: string; backoffInitialMs: number; backoffMaxMs: number };
  metrics?: { textfileDir: string };
}

export const ENV_VAR = "MACOS_RUNNER_CONFIG";
const DEFAULT_PATH = "~/.config/macos-runner/config.yml";

type PathSource = "flag" | "env" | "default";

/** The config file to read: --config, else $MACOS_RUNNER_CONFIG, else ~/.config/macos-runner/config.yml. */
export function resolveConfigPath(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return chooseConfigPath(flag, env).path;
}

export function loadConfig(opts: { path?: string; env?: NodeJS.ProcessEnv } = {}): Config {
  const env = opts.env ?? process.env;
  const { path, source } = chooseConfigPath(opts.path, env);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === "ENOENT" ? "not found" : code === "EISDIR" ? "is a directory" : `cannot be read (${(err as Error).message})`;
    throw new ConfigError(`config file ${path} ${what}; ${REMEDY[source]}`);
  }
  return parseConfig(text, { file: path, env });
}

const REMEDY: Record<PathSource, string> = {
  flag: "the path came from --config; check it",
  env: `the path came from $${ENV_VAR}; fix it, or unset it to use ${DEFAULT_PATH}`,
  default: `that is the default path (neither --config nor $${ENV_VAR} is set); create the file there, or pass --config PATH or set ${ENV_VAR}`,
};

function chooseConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv): { path: string; source: PathSource } {
  const [raw, source]: [string, PathSource] = flag ? [flag, "flag"] : env[ENV_VAR] ? [env[ENV_VAR], "env"] : [DEFAULT_PATH, "default"];
  if (source === "default" && !env.HOME) {
    throw new ConfigError(`cannot locate the config file: HOME is not set, so the default ${DEFAULT_PATH} has no meaning; pass --config PATH or set ${ENV_VAR}`);
  }
  try {
    return { path: expandPath(raw, { home: env.HOME || undefined, dir: process.cwd() }), source };
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    throw new ConfigError(`cannot locate the config file: ${err.message}; ${REMEDY[source]}`);
  }
}

/** Reads config text as if it were the file `opts.file` (relative paths resolve against its directory). */
export function parseConfig(text: string, opts: { file: string; env?: NodeJS.ProcessEnv }): Config {
  const file = resolve(opts.file);
  const env = opts.env ?? process.env;
  const base: PathBase = { home: env.HOME || undefined, dir: dirname(file) };
  const doc = new ConfigDoc(text);
  const root = doc.root(["github", "runner", "image", "vm", "host", "metrics"]);
  if (!root) throw ConfigError.forFile(file, doc.problems);

  const github = readGithub(root.section("github", ["url", "api_url", "app", "token_path"]), base);
  const runner = readRunner(root.section("runner", ["name_prefix", "labels", "group", "work_folder", "job_timeout", "listen_timeout", "exit_timeout"]), github?.scope);
  const image = readImage(root.section("image", ["ref", "insecure", "username", "password_path", "min_free_gb", "pull_interval", "runner_releases_url"]), base);
  const vm = readVm(root.section("vm", ["cpu", "memory_mb", "boot_timeout", "start", "preclone_max_age", "ssh"]), base);
  const host = readHost(root.section("host", ["slots", "id", "tart_path", "state_dir", "log_dir", "dhcp_leases_path", "backoff_initial", "backoff_max"]), base);
  const metrics = readMetrics(root.section("metrics", ["textfile_dir"]), base);
  if (doc.problems.length > 0 || !github || !image || !vm || !host) throw ConfigError.forFile(file, doc.problems);
  return { file, github, runner, image, vm, host, ...(metrics && { metrics }) };
}

function readGithub(sec: Section, base: PathBase): Config["github"] | undefined {
  sec.require("url", "e.g. https://github.com/acme (org), https://github.com/acme/app (repo) or https://github.com/enterprises/acme");
  const target = sec.string("url", parseGithubUrl);
  const apiUrl = sec.string("api_url", parseApiUrl) ?? (target && defaultApiUrl(target.url));
  const auth = readAuth(sec, base, target?.scope);
  return target && apiUrl && auth ? { url: target.url, apiUrl, scope: target.scope, auth } : undefined;
}

function readAuth(sec: Section, base: PathBase, scope: Scope | undefined): Config["github"]["auth"] | undefined {
  const app = sec.section("app", ["id", "installation_id", "private_key_path"]);
  const hasToken = sec.has("token_path");
  if (app.present && hasToken) sec.report("token_path", "set either github.app or github.token_path, not both");
  if (!app.present && !hasToken) {
    sec.reportSelf("needs github.app (a GitHub App: id and private_key_path) or github.token_path (a file holding a PAT)");
  }
  const tokenPath = sec.string("token_path", (s) => secretFile(s, base));
  if (!app.present) return tokenPath === undefined ? undefined : { kind: "pat", tokenPath };

  // contracts/github.md §1: enterprise runner endpoints are not enabled for GitHub Apps.
  if (scope?.kind === "enterprise") {
    app.reportSelf("GitHub Apps cannot manage enterprise runners; use github.token_path with a classic PAT (scope manage_runners:enterprise)");
  }
  app.require("id", "the GitHub App's numeric id");
  app.require("private_key_path", "the App's private key file (.pem)");
  const appId = app.integer("id", { min: 1 });
  const installationId = app.integer("installation_id", { min: 1 });
  const privateKeyPath = app.string("private_key_path", (s) => secretFile(s, base));
  if (appId === undefined || privateKeyPath === undefined) return undefined;
  return { kind: "app", appId, ...(installationId !== undefined && { installationId }), privateKeyPath };
}

const DEFAULT_LABELS = ["self-hosted", "macOS", "ARM64"];

function readRunner(sec: Section, scope: Scope | undefined): Config["runner"] {
  const group = sec.string("group") ?? "Default";
  // contracts/github.md §1: runner groups exist for orgs and enterprises only.
  if (scope?.kind === "repo" && group !== "Default") {
    sec.report("group", "a repository has no runner groups; remove runner.group (or set it to Default) for a repo URL");
  }
  return {
    namePrefix: sec.string("name_prefix", checkNamePrefix) ?? "macos-runner",
    labels: readLabels(sec) ?? DEFAULT_LABELS,
    group,
    workFolder: sec.string("work_folder") ?? "_work",
    jobTimeoutMs: sec.duration("job_timeout") ?? parseDuration("6h"),
    listenTimeoutMs: sec.duration("listen_timeout") ?? parseDuration("2m"),
    exitTimeoutMs: sec.duration("exit_timeout") ?? parseDuration("1m"),
  };
}

// Runner names are <prefix>-<host>-<slot>-<random> and GitHub caps names at 64.
function checkNamePrefix(s: string): string {
  if (!/^[A-Za-z0-9._-]{1,32}$/.test(s)) {
    throw new Invalid(`must be 1 to 32 of A-Z a-z 0-9 . _ - (runner names are <prefix>-<host>-<slot>-<random>, at most 64 characters), got ${JSON.stringify(s)}`);
  }
  return s;
}

function readLabels(sec: Section): string[] | undefined {
  const items = sec.strings("labels", { min: 1, max: 100 });
  if (!items) return undefined;
  const seen = new Map<string, string>();
  for (const item of items) {
    const { value } = item;
    const first = seen.get(value.toLowerCase());
    if (value.trim() === "") item.report("must not be empty");
    else if (value.trim() !== value) item.report(`${JSON.stringify(value)} has leading or trailing spaces`);
    else if (value.length > 256) item.report(`is ${value.length} characters; labels are at most 256`);
    else if (value.includes(",")) item.report(`${JSON.stringify(value)} contains a comma; the runner splits labels on commas, so give each label as its own list entry`);
    else if (first !== undefined) item.report(`${JSON.stringify(value)} repeats ${JSON.stringify(first)} (labels are case-insensitive)`);
    else seen.set(value.toLowerCase(), value);
  }
  return items.map((i) => i.value);
}

function readImage(sec: Section, base: PathBase): Config["image"] | undefined {
  sec.require("ref", "the golden VM image, e.g. registry.example.com/macos-runner:sequoia, or a local VM name");
  const ref = sec.string("ref", noWhitespace);
  const username = sec.string("username");
  const passwordPath = sec.string("password_path", (s) => secretFile(s, base));
  if (sec.has("username") !== sec.has("password_path")) {
    sec.report(sec.has("username") ? "username" : "password_path", "image.username and image.password_path go together; set both or neither");
  }
  const insecure = sec.boolean("insecure") ?? false;
  const minFreeGb = sec.integer("min_free_gb", { min: 1 });
  const pullIntervalMs = sec.duration("pull_interval") ?? parseDuration("5m");
  // launchd's StartInterval is whole seconds; under a minute a pull would still be running.
  if (pullIntervalMs < 60_000) sec.report("pull_interval", "must be at least 1m (launchd starts pull on this interval)");
  const runnerReleasesUrl = sec.string("runner_releases_url", parseApiUrl) ?? "https://api.github.com/repos/actions/runner/releases";
  if (ref === undefined) return undefined;
  return {
    ref,
    insecure,
    ...(username !== undefined && { username }),
    ...(passwordPath !== undefined && { passwordPath }),
    ...(minFreeGb !== undefined && { minFreeGb }),
    pullIntervalMs,
    runnerReleasesUrl,
  };
}

function readVm(sec: Section, base: PathBase): Config["vm"] | undefined {
  const cpu = sec.integer("cpu", { min: 1 });
  const memoryMb = sec.integer("memory_mb", { min: 1 });
  const bootTimeoutMs = sec.duration("boot_timeout") ?? parseDuration("3m");
  const start = sec.string("start", (s) => {
    if (s !== "cold" && s !== "snapshot") throw new Invalid(`must be cold or snapshot, got ${JSON.stringify(s)}`);
    return s;
  }) ?? "cold";
  const precloneMaxAgeMs = sec.duration("preclone_max_age") ?? parseDuration("1h");
  const ssh = sec.section("ssh", ["user", "port", "private_key_path", "known_hosts_path"]);
  ssh.require("private_key_path", "the private key whose public half the golden image authorises");
  ssh.require("known_hosts_path", "a known_hosts file holding the golden image's host key");
  const user = ssh.string("user", noWhitespace) ?? "admin";
  const port = ssh.integer("port", { min: 1, max: 65535 }) ?? 22;
  const privateKeyPath = ssh.string("private_key_path", (s) => secretFile(s, base));
  const knownHostsPath = ssh.string("known_hosts_path", (s) => existingFile(s, base));
  if (privateKeyPath === undefined || knownHostsPath === undefined) return undefined;
  return {
    ...(cpu !== undefined && { cpu }),
    ...(memoryMb !== undefined && { memoryMb }),
    bootTimeoutMs,
    start,
    precloneMaxAgeMs,
    ssh: { user, port, privateKeyPath, knownHostsPath },
  };
}

function readHost(sec: Section, base: PathBase): Config["host"] | undefined {
  const slots = sec.integer("slots", { min: 1, max: 2, expect: "1 or 2 (Apple's macOS licence allows at most 2 macOS VMs per host)" });
  const stateDir = dirOrDefault(sec, "state_dir", "~/Library/Application Support/macos-runner", base);
  const logDir = dirOrDefault(sec, "log_dir", "~/Library/Logs/macos-runner", base);
  const tartPath = sec.string("tart_path", (s) => commandPath(s, base)) ?? "tart";
  const id = sec.string("id", (s) => {
    if (!/^[a-z0-9-]{1,32}$/.test(s)) throw new Invalid(`must be 1 to 32 of a-z 0-9 - (the host part of VM and runner names), got ${JSON.stringify(s)}`);
    return s;
  });
  const dhcpLeasesPath = sec.has("dhcp_leases_path") ? sec.string("dhcp_leases_path", (s) => expandPath(s, base)) : "/var/db/dhcpd_leases";
  // A failing cycle waits before exiting, doubling per failure up to the cap,
  // so a GitHub outage does not become a launchd restart storm.
  const backoffInitialMs = sec.duration("backoff_initial") ?? parseDuration("10s");
  const backoffMaxMs = sec.duration("backoff_max") ?? parseDuration("10m");
  if (backoffMaxMs < backoffInitialMs) sec.report("backoff_max", `must be at least host.backoff_initial (${backoffInitialMs} ms)`);
  if (stateDir === undefined || logDir === undefined || dhcpLeasesPath === undefined) return undefined;
  return { slots: (slots ?? 2) as 1 | 2, ...(id !== undefined && { id }), tartPath, stateDir, logDir, dhcpLeasesPath, backoffInitialMs, backoffMaxMs };
}

function readMetrics(sec: Section, base: PathBase): Config["metrics"] {
  if (!sec.present) return undefined;
  sec.require("textfile_dir", "the node_exporter textfile collector directory");
  const textfileDir = sec.string("textfile_dir", (s) => expandPath(s, base));
  return textfileDir === undefined ? undefined : { textfileDir };
}

/** A directory path, or its `~/...` default (which needs HOME). */
function dirOrDefault(sec: Section, key: string, fallback: string, base: PathBase): string | undefined {
  if (sec.has(key)) return sec.string(key, (s) => expandPath(s, base));
  try {
    return expandPath(fallback, base);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    sec.report(key, `defaults to ${fallback}, but HOME is not set; set HOME or give ${sec.keyPath(key)} as an absolute path`);
    return undefined;
  }
}

function noWhitespace(s: string): string {
  if (/\s/.test(s)) throw new Invalid(`must not contain spaces, got ${JSON.stringify(s)}`);
  return s;
}
