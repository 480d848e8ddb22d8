// Fake actions runner listener (actions/runner 2.336.0's behaviour; sim/PROTOCOL.md).
// Plain, dependency-free JavaScript for the guest's `node`; it talks to
// sim/github only. Commands: configure, remove, run.
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";

const VERSION = "2.336.0";
const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const RC = { success: 0, terminated: 1, retryable: 2, sessionConflict: 5 };
/** Long-poll length, as the real broker listener's. */
const POLL_WAIT_MS = 50_000;
/** The real listener retries every 30 s; the fake starts faster and backs off to that. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;
const CONFLICT_RETRY_MS = 30_000;
const CONFLICT_GIVE_UP_MS = 240_000;
const OUTPUT_LIMIT = 1 << 20;
const CONFIG_FILES = [".runner", ".credentials", ".credentials_rsaparams"];
/** While the guest's clock is unsynced, session creation is retried this often. */
const CLOCK_RETRY_MS = 1_000;

const BOOL_FLAGS = new Set(["unattended", "ephemeral", "replace", "disableupdate", "no-default-labels", "local", "once", "check", "help", "version", "commit", "generateServiceConfig", "runasservice"]);
const VALUE_FLAGS = new Set(["url", "token", "name", "labels", "runnergroup", "work", "pat", "jitconfig", "startuptype", "windowslogonaccount", "windowslogonpassword", "auth"]);

/** A failure the listener reports on stderr and turns into a return code. */
class RunnerExit extends Error {
  constructor(message, rc) {
    super(message);
    this.rc = rc;
  }
}

// Like the .NET runner, ignore a broken stdout or stderr (the SSH client that
// started us was killed): no crash, no exit; the runner keeps listening and
// runs its job, its lines just go nowhere. (node already ignores SIGPIPE.)
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});

const ts = () => new Date().toISOString().replace("T", " ").replace(/\.\d{3}Z$/, "Z");
const out = (line = "") => process.stdout.write(`${line}\n`);
const err = (line) => process.stderr.write(`${line}\n`);

/** Stop requested by a signal: ends the current wait and the job, then the session. */
const stop = new AbortController();

/** Waits `ms`, or less when a stop is requested. */
function sleep(ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      stop.signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    stop.signal.addEventListener("abort", done);
  });
}

// ACTIONS_RUNNER_INPUT_<NAME> variables are read once, then removed from the environment.
const envInputs = {};
for (const key of Object.keys(process.env)) {
  if (key.startsWith("ACTIONS_RUNNER_INPUT_")) {
    envInputs[key.slice("ACTIONS_RUNNER_INPUT_".length).toLowerCase()] = process.env[key];
    delete process.env[key];
  }
}

function parseArgs(argv) {
  const flags = {};
  const unknown = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith("--") ? argv[i].slice(2) : undefined;
    if (name !== undefined && BOOL_FLAGS.has(name)) flags[name] = true;
    else if (name !== undefined && VALUE_FLAGS.has(name) && i + 1 < argv.length) flags[name] = argv[++i];
    else unknown.push(argv[i]);
  }
  if (unknown.length) {
    throw new RunnerExit(`Unrecognized command-line input arguments: '${unknown.join(", ")}'. For usage refer to: .\\config.cmd --help or ./config.sh --help`, RC.terminated);
  }
  // The command line wins over ACTIONS_RUNNER_INPUT_*.
  const get = (name) => flags[name] ?? envInputs[name.replace(/-/g, "_")] ?? envInputs[name];
  const has = (name) => flags[name] === true || ["true", "1"].includes(String(envInputs[name.replace(/-/g, "_")] ?? "").toLowerCase());
  return { get, has };
}

const STATUS_NAMES = { 400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 410: "Gone", 422: "UnprocessableEntity", 429: "TooManyRequests", 500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable" };

/**
 * One HTTP call with a timeout; `body` is sent as JSON. node:http rather than
 * fetch: loading fetch costs about 50 ms of start-up.
 */
async function call(method, url, { auth, body, signal, timeoutMs = 30_000 } = {}) {
  const target = new URL(url);
  const transport = target.protocol === "https:" ? await import("node:https") : await import("node:http");
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const timeout = AbortSignal.timeout(timeoutMs);
  return new Promise((resolve, reject) => {
    const req = transport.request(
      target,
      {
        method,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        headers: {
          ...(auth ? { authorization: auth } : {}),
          ...(payload !== undefined ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}),
          "user-agent": `GitHubActionsRunner-${VERSION}`,
        },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let data;
          try {
            data = text ? JSON.parse(text) : undefined;
          } catch {
            data = text;
          }
          resolve({ status: res.statusCode, data, text });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

function httpFailure(method, url, res) {
  return new RunnerExit(`Http response code: ${STATUS_NAMES[res.status] ?? res.status} from '${method} ${url}'\n${res.text}`, RC.terminated);
}

// ---- configuration files -------------------------------------------------

const configPath = (name) => join(ROOT, name);

function readJsonFile(name) {
  return JSON.parse(readFileSync(configPath(name), "utf8"));
}

function writeConfigFiles(files) {
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(configPath(name), typeof content === "string" ? content : JSON.stringify(content, null, 2), { mode: 0o600 });
  }
}

function removeLocalConfig({ announce }) {
  for (const name of [".credentials", ".runner"]) {
    if (!existsSync(configPath(name))) continue;
    rmSync(configPath(name), { force: true });
    if (announce) out(`√ Removed ${name}`);
  }
  rmSync(configPath(".credentials_rsaparams"), { force: true });
}

/**
 * Writes the files of a `--jitconfig` value: base64 of `{file: base64(content)}`.
 * The real runner (2.336.0) overwrites the files the config names and leaves
 * any other; the sim takes the harsher reading (other versions, a file the new
 * config does not name) and refuses while any config file of an earlier runner
 * is still there: whoever reuses a runner directory must remove them first.
 */
function writeJitConfig(encoded) {
  const stale = CONFIG_FILES.filter((name) => existsSync(configPath(name)));
  if (stale.length) {
    throw new RunnerExit(`Cannot configure the runner because it is already configured (${stale.join(", ")} left by an earlier runner). Remove them before running with a JIT configuration.`, RC.terminated);
  }
  let files;
  try {
    files = JSON.parse(Buffer.from(encoded, "base64").toString("utf8"));
    if (!files || typeof files !== "object" || Array.isArray(files) || !files[".runner"] || !files[".credentials"]) {
      throw new Error("it does not hold .runner and .credentials");
    }
    files = Object.fromEntries(Object.entries(files).map(([name, b64]) => [name, Buffer.from(String(b64), "base64").toString("utf8")]));
    JSON.parse(files[".runner"]);
    JSON.parse(files[".credentials"]);
  } catch (e) {
    throw new RunnerExit(`Failed to decode the JIT configuration (--jitconfig): ${e.message}`, RC.terminated);
  }
  writeConfigFiles(files);
}

function loadEnvFile() {
  const path = configPath(".env");
  if (!existsSync(path)) return;
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) process.env[line.slice(0, eq)] = line.slice(eq + 1);
  }
}

// ---- configure / remove ----------------------------------------------------

/** `{api}` for a runner URL: api.github.com for github.com, else `<origin>/api/v3` (UrlUtil). */
function apiUrlFor(url) {
  const u = new URL(url);
  if (u.hostname === "github.com" || u.hostname.endsWith(".ghe.com")) return `${u.protocol}//api.${u.hostname}`;
  return `${u.origin}/api/v3`;
}

function requireValue(args, name) {
  const value = args.get(name);
  if (!value) throw new RunnerExit(`Invalid configuration provided for ${name}. Terminating unattended configuration.`, RC.terminated);
  return value;
}

/** The registration (or remove) token: `--token`, or fetched with `--pat`. */
async function runnerToken(args, url, kind) {
  const token = args.get("token");
  if (token) return token;
  const pat = args.get("pat");
  if (!pat) throw new RunnerExit("Invalid configuration provided for token. Terminating unattended configuration.", RC.terminated);
  const parts = new URL(url).pathname.split("/").filter(Boolean);
  const scope = parts[0] === "enterprises" ? `enterprises/${parts[1]}` : parts.length === 2 ? `repos/${parts[0]}/${parts[1]}` : `orgs/${parts[0]}`;
  const endpoint = `${apiUrlFor(url)}/${scope}/actions/runners/${kind}-token`;
  const res = await call("POST", endpoint, { auth: `token ${pat}` });
  if (res.status !== 201) throw httpFailure("POST", endpoint, res);
  return res.data.token;
}

/** POST {api}/actions/runner-registration with RemoteAuth: up to 3 tries, none after a 404. */
async function runnerRegistration(url, token, event) {
  const endpoint = `${apiUrlFor(url)}/actions/runner-registration`;
  let last;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      last = await call("POST", endpoint, { auth: `RemoteAuth ${token}`, body: { url, runner_event: event } });
      if (last.status === 200) return last.data;
      if (last.status === 404 || last.status < 500) break;
    } catch (e) {
      last = { status: "NetworkError", text: e.message };
    }
    if (attempt < 3) await sleep(500 * attempt);
  }
  throw httpFailure("POST", endpoint, last);
}

function defaultLabels() {
  const os = { darwin: "macOS", linux: "Linux", win32: "Windows" }[process.platform] ?? process.platform;
  const arch = { arm64: "ARM64", x64: "X64", arm: "ARM" }[process.arch] ?? process.arch;
  return ["self-hosted", os, arch];
}

async function configure(args) {
  if (existsSync(configPath(".runner"))) {
    throw new RunnerExit("Cannot configure the runner because it is already configured. To reconfigure the runner, run 'config.cmd remove' or './config.sh remove' first.", RC.terminated);
  }
  const url = requireValue(args, "url");
  try {
    new URL(url);
  } catch {
    throw new RunnerExit(`Invalid configuration provided for url. Terminating unattended configuration.`, RC.terminated);
  }
  const custom = (args.get("labels") ?? "").split(",").map((l) => l.trim()).filter(Boolean);
  const tooLong = custom.find((l) => l.length > 256);
  if (tooLong) throw new RunnerExit(`Label '${tooLong.slice(0, 40)}…' is longer than 256 characters.`, RC.terminated);
  if (args.has("no-default-labels") && custom.length === 0) {
    throw new RunnerExit("--no-default-labels requires --labels: a runner needs at least one label.", RC.terminated);
  }
  const seen = new Set();
  const labels = [...(args.has("no-default-labels") ? [] : defaultLabels()), ...custom].filter((l) => !seen.has(l.toLowerCase()) && seen.add(l.toLowerCase()));
  const name = args.get("name") || hostname();

  out();
  out("# Authentication");
  out();
  const token = await runnerToken(args, url, "registration");
  const registration = await runnerRegistration(url, token, "register");
  out("√ Connected to GitHub");
  out();
  out("# Runner Registration");
  out();
  out(`This runner will have the following labels: ${labels.map((l) => `'${l}'`).join(", ")}`);
  const res = await call("POST", `${registration.url}/_broker/agents`, {
    auth: `Bearer ${registration.token}`,
    body: { name, labels, runner_group: args.get("runnergroup"), work_folder: args.get("work") || "_work", ephemeral: args.has("ephemeral"), replace: args.has("replace") },
  });
  if (res.status === 409) throw new RunnerExit(`A runner exists with the same name ${name}.`, RC.terminated);
  if (res.status !== 201) throw new RunnerExit(res.data?.message ?? res.text, RC.terminated);
  out(res.data.replaced ? "√ Successfully replaced the runner" : "√ Runner successfully added");
  out();
  out("# Runner settings");
  out();
  writeConfigFiles(res.data.files);
  out("√ Settings Saved.");
  out();
  return RC.success;
}

async function remove(args) {
  if (!existsSync(configPath(".runner"))) throw new RunnerExit("The runner is not configured: there is no .runner file to remove.", RC.terminated);
  out();
  out("# Runner removal");
  out();
  if (!args.has("local")) {
    const runner = readJsonFile(".runner");
    const url = runner.gitHubUrl;
    const registration = await runnerRegistration(url, await runnerToken(args, url, "remove"), "remove");
    const endpoint = `${registration.url}/_broker/agents/${runner.agentId}`;
    const res = await call("DELETE", endpoint, { auth: `Bearer ${registration.token}` });
    if (res.status !== 204 && res.status !== 404) throw httpFailure("DELETE", endpoint, res);
    out("√ Runner removed successfully");
  }
  removeLocalConfig({ announce: true });
  out();
  return RC.success;
}

// ---- run ---------------------------------------------------------------------

/** Simulation hook: the runner's own start-up time before it contacts GitHub (`SIM_RUNNER_START_MS`, default 0). */
function startUpMs() {
  const raw = process.env.SIM_RUNNER_START_MS ?? "0";
  const ms = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(ms) || ms < 0) throw new RunnerExit(`SIM_RUNNER_START_MS must be a number of milliseconds, got '${raw}'`, RC.terminated);
  return ms;
}

/**
 * Simulation hook: a runner that prints its own secrets in part, as a
 * verbose, patched or debugging runner can (`SIM_RUNNER_LEAK_SECRETS=1`).
 * For the OAuth clientId and token of .credentials and every field of
 * .credentials_rsaparams long enough: the whole value, its first 43
 * characters, 30 from its middle, the whole with `/` JSON-escaped as `\/`,
 * and the whole value split across two writes of one line (a pause between them, so
 * they reach the reader apart); each on stdout and on stderr.
 */
async function leakSecrets() {
  if (process.env.SIM_RUNNER_LEAK_SECRETS !== "1") return;
  const credentials = readJsonFile(".credentials").data ?? {};
  const rsa = existsSync(configPath(".credentials_rsaparams")) ? readJsonFile(".credentials_rsaparams") : {};
  const secrets = [credentials.clientId, credentials.token, ...Object.values(rsa)].filter((v) => typeof v === "string" && v.length >= 30);
  for (const [i, value] of secrets.entries()) {
    const middle = Math.floor(value.length / 2) - 15;
    const pieces = [
      ["whole", value],
      ["prefix", value.slice(0, 43)],
      ["middle", value.slice(middle, middle + 30)],
      ["escaped", value.replaceAll("/", "\\/")],
    ];
    for (const stream of [process.stdout, process.stderr]) {
      for (const [kind, piece] of pieces) stream.write(`debug: runner secret ${i} ${kind}: ${piece}\n`);
      const half = Math.floor(value.length / 2);
      stream.write(`debug: runner secret ${i} split: ${value.slice(0, half)}`);
      await sleep(20);
      stream.write(`${value.slice(half)} (end)\n`);
    }
  }
}

/** Simulation hook: a chatty runner (`SIM_RUNNER_NOISE_LINES=N`) prints N lines of 2000 characters on stderr. */
function printNoise() {
  const raw = process.env.SIM_RUNNER_NOISE_LINES ?? "0";
  const lines = Number(raw);
  if (!Number.isInteger(lines) || lines < 0) throw new RunnerExit(`SIM_RUNNER_NOISE_LINES must be a whole number of lines, got '${raw}'`, RC.terminated);
  for (let i = 0; i < lines; i++) err(`debug: noise ${i} ${".".repeat(2000)}`);
}

/**
 * Simulation hook: a guest restored from a snapshot whose clock was never
 * synced cannot connect while the file `SIM_GUEST_CLOCK_FILE` exists.
 */
function clockUnsynced() {
  const file = process.env.SIM_GUEST_CLOCK_FILE;
  return Boolean(file) && existsSync(file);
}

/**
 * Simulation record of each listener start, in `_diag/` as the real runner
 * keeps its trace there: what an earlier runner left at this start (config
 * files, listener processes of this root still alive) and when it exited.
 * Tests read it to prove a runner started in a reused VM saw nothing of the
 * one before (sim/PROTOCOL.md).
 */
const diagFile = join(ROOT, "_diag", `Runner_${new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)}-utc-${process.pid}.log`);
function diag(record) {
  try {
    mkdirSync(dirname(diagFile), { recursive: true });
    appendFileSync(diagFile, `${JSON.stringify({ at: Date.now(), pid: process.pid, ...record })}\n`);
  } catch {
    // a record only; never the runner's failure
  }
}

/** Other live listener processes of this runner root (Linux /proc; none found elsewhere). */
function otherListeners() {
  const me = join(ROOT, "bin", "Runner.Listener.mjs");
  const found = [];
  let pids = [];
  try {
    pids = readdirSync("/proc").filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid);
  } catch {
    return found;
  }
  for (const pid of pids) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (argv.includes(me) && argv.includes("run")) found.push(Number(pid));
    } catch {
      // ended meanwhile
    }
  }
  return found;
}

class Listener {
  constructor(runner, credentials) {
    this.runner = runner;
    this.base = runner.serverUrl.replace(/\/$/, "");
    this.auth = `Bearer ${credentials.data.token}`;
    this.sessionId = undefined;
    this.leaseMs = 10_000;
    this.failing = false;
  }

  broker(method, path, body, timeoutMs) {
    return call(method, `${this.base}/_broker${path}`, { auth: this.auth, body, signal: stop.signal, timeoutMs });
  }

  gone() {
    err("The runner no longer exists on the server. Cleaning up local configuration.");
    removeLocalConfig({ announce: false });
    return RC.success;
  }

  /** Reported once per outage, as the real listener does; `reconnected()` ends it. */
  connectError(message) {
    if (!this.failing) err(`${ts()}: Runner connect error: ${message}. Retrying until reconnected.`);
    this.failing = true;
  }

  reconnected() {
    if (this.failing) err(`${ts()}: Runner reconnected.`);
    this.failing = false;
  }

  /** Creates the broker session; returns a return code when the listener must end instead. */
  async openSession() {
    const os = { darwin: "macOS", linux: "Linux", win32: "Windows" }[process.platform] ?? process.platform;
    const conflictSince = Date.now();
    let delay = RETRY_FIRST_MS;
    for (;;) {
      if (stop.signal.aborted) return RC.success;
      if (clockUnsynced()) {
        this.connectError("The access token is not yet valid: clock skew between this machine and the server exceeds the allowed limit");
        await sleep(CLOCK_RETRY_MS);
        continue;
      }
      let res;
      try {
        res = await this.broker("POST", "/sessions", { runner_id: this.runner.agentId, os, version: VERSION });
      } catch (e) {
        if (stop.signal.aborted) return RC.success;
        res = { status: 0, text: e.message };
      }
      if (res.status === 201) {
        this.sessionId = res.data.session_id;
        this.leaseMs = res.data.lease_ms ?? this.leaseMs;
        this.reconnected();
        return undefined;
      }
      // As the real broker listener: no cleanup when the runner is gone before its session exists.
      if (res.status === 404) {
        err("The runner no longer exists on the server. Please reconfigure the runner.");
        return RC.terminated;
      }
      if (res.status === 401) {
        err("Failed to create a session. The runner registration has been deleted from the server, please re-configure. Runner registrations are automatically deleted for runners that have not connected to the service recently.");
        return RC.terminated;
      }
      if (res.status === 409) {
        err("A session for this runner already exists.");
        if (Date.now() - conflictSince >= CONFLICT_GIVE_UP_MS) {
          err(`${ts()}: Stop retry on SessionConflictException after retried for ${CONFLICT_GIVE_UP_MS / 1000} seconds.`);
          return RC.sessionConflict;
        }
        await sleep(CONFLICT_RETRY_MS);
        continue;
      }
      this.connectError(res.status ? `${STATUS_NAMES[res.status] ?? res.status} ${res.text}` : res.text);
      await sleep(delay);
      delay = Math.min(RETRY_MAX_MS, delay * 2);
    }
  }

  /** Waits for a job: the job, or a return code when the listener must end. */
  async nextJob() {
    let delay = RETRY_FIRST_MS;
    for (;;) {
      if (stop.signal.aborted) return RC.success;
      let res;
      try {
        res = await this.broker("GET", `/sessions/${this.sessionId}/job?wait_ms=${POLL_WAIT_MS}`, undefined, POLL_WAIT_MS + 15_000);
      } catch (e) {
        if (stop.signal.aborted) return RC.success;
        res = { status: 0, text: e.message };
      }
      if (res.status === 200) {
        this.reconnected();
        return res.data.job;
      }
      if (res.status === 204) {
        this.reconnected();
        continue;
      }
      if (res.status === 404) return this.gone();
      if (res.status === 410) {
        const rc = await this.openSession();
        if (rc !== undefined) return rc;
        continue;
      }
      this.connectError(res.status ? `${STATUS_NAMES[res.status] ?? res.status} ${res.text}` : res.text);
      await sleep(delay);
      delay = Math.min(RETRY_MAX_MS, delay * 2);
    }
  }

  /** Runs the job's script with /bin/sh -c in the work folder; its output goes to the sim only, never to the runner's log. */
  async runJob(job) {
    out(`${ts()}: Running job: ${job.name}`);
    const work = isAbsolute(this.runner.workFolder ?? "_work") ? this.runner.workFolder : join(ROOT, this.runner.workFolder ?? "_work");
    mkdirSync(work, { recursive: true });
    const env = { ...process.env, CI: "true", GITHUB_ACTIONS: "true", RUNNER_NAME: this.runner.agentName, RUNNER_WORKSPACE: work, GITHUB_JOB: job.name };
    const child = spawn("/bin/sh", ["-c", job.script], { cwd: work, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let output = "";
    const collect = (text) => {
      if (output.length < OUTPUT_LIMIT) output += text.slice(0, OUTPUT_LIMIT - output.length);
    };
    for (const stream of [child.stdout, child.stderr]) stream.setEncoding("utf8").on("data", collect);
    const heartbeat = setInterval(() => {
      this.broker("POST", `/sessions/${this.sessionId}/heartbeat`, undefined, 5_000).catch(() => {});
    }, Math.max(100, Math.floor(this.leaseMs / 3)));
    const kill = () => {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // the job already ended
      }
    };
    stop.signal.addEventListener("abort", kill);
    const exitCode = await new Promise((resolve) => {
      child.on("error", (e) => {
        output += `${e.message}\n`;
        resolve(127);
      });
      child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
    clearInterval(heartbeat);
    stop.signal.removeEventListener("abort", kill);
    if (stop.signal.aborted) return undefined;

    const result = exitCode === 0 ? "Succeeded" : "Failed";
    await this.reportResult(job, { result, exit_code: exitCode, output });
    out(`${ts()}: Job ${job.name} completed with result: ${result}`);
    return result;
  }

  async reportResult(job, report) {
    let delay = RETRY_FIRST_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.broker("POST", `/jobs/${job.id}/result`, report);
        if (res.status === 204) return;
        if (res.status < 500) throw new RunnerExit(`The job result was refused: ${STATUS_NAMES[res.status] ?? res.status} ${res.text}`, RC.terminated);
      } catch (e) {
        if (e instanceof RunnerExit || attempt >= 5 || stop.signal.aborted) throw e;
      }
      await sleep(delay);
      delay = Math.min(RETRY_MAX_MS, delay * 2);
    }
  }

  /** Deletes the session (on stop and after the last job); the runner stays registered. */
  async closeSession() {
    if (!this.sessionId) return;
    try {
      await call("DELETE", `${this.base}/_broker/sessions/${this.sessionId}`, { auth: this.auth, timeoutMs: 3_000 });
    } catch {
      // best effort: the broker drops silent sessions itself
    }
    this.sessionId = undefined;
  }
}

async function run(args) {
  if (args.has("once")) out("Warning: '--once' is going to be deprecated in the future, please consider using '--ephemeral' during runner registration.");
  const jitconfig = args.get("jitconfig");
  diag({ event: "start", found: CONFIG_FILES.filter((name) => existsSync(configPath(name))), listeners: otherListeners() });
  if (jitconfig) writeJitConfig(jitconfig);
  if (!existsSync(configPath(".runner")) || !existsSync(configPath(".credentials"))) {
    throw new RunnerExit("Not configured. Run config.(sh/cmd) to configure the runner.", RC.terminated);
  }
  loadEnvFile();
  await leakSecrets();
  printNoise();
  const runner = readJsonFile(".runner");
  diag({ event: "configured", agentId: runner.agentId, agentName: runner.agentName });
  const listener = new Listener(runner, readJsonFile(".credentials"));
  const onSignal = () => stop.abort();
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(sig, onSignal);

  await sleep(startUpMs());
  if (stop.signal.aborted) return RC.success;
  // The real runner says so before its message session exists; only "Listening for Jobs" means it can get a job.
  out();
  out("√ Connected to GitHub");
  out();
  const rc = await listener.openSession();
  if (rc !== undefined) return rc;
  out(`Current runner version: '${VERSION}'`);
  out(`${ts()}: Listening for Jobs`);
  for (;;) {
    const job = await listener.nextJob();
    if (typeof job === "number") {
      if (stop.signal.aborted) await listener.closeSession();
      return job;
    }
    await listener.runJob(job);
    if (stop.signal.aborted) {
      await listener.closeSession();
      out("Exiting...");
      return RC.success;
    }
    if (runner.ephemeral || args.has("once")) {
      await listener.closeSession();
      removeLocalConfig({ announce: true });
      return RC.success;
    }
  }
}

async function main() {
  const [command, ...rest] = process.argv.slice(2);
  // `Runner.Listener --version` (also `run.sh --version`, which passes `run --version`)
  // prints the version and exits 0; the .NET start-up it pays first is SIM_RUNNER_START_MS.
  try {
    if (command === "--version" || rest.includes("--version")) {
      await sleep(startUpMs());
      out(VERSION);
      return RC.success;
    }
    const args = parseArgs(rest);
    if (command === "configure") return await configure(args);
    if (command === "remove") return await remove(args);
    if (command === "run") return await run(args);
    throw new RunnerExit(`Unknown command '${command ?? ""}': use configure, remove or run.`, RC.terminated);
  } catch (e) {
    if (e instanceof RunnerExit) {
      err(e.message);
      return e.rc;
    }
    err(`${ts()}: Unhandled exception: ${e?.stack ?? e}`);
    return command === "run" ? RC.retryable : RC.terminated;
  }
}

const code = await main();
if (process.argv[2] === "run") diag({ event: "exit", rc: code });
// Exit once stdout is flushed (pipes are asynchronous on macOS; a broken pipe
// calls back with its error); open keep-alive sockets must not hold the process.
process.stdout.write("", () => process.exit(code));
