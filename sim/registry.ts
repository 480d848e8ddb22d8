// A real OCI registry for the sim: Debian's CNCF Distribution server
// (`docker-registry`) on 127.0.0.1, filesystem storage in a temp dir, delete
// enabled, htpasswd (bcrypt) auth. Ready once GET /v2/ answers 401.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REGISTRY_BINARY = "/usr/bin/docker-registry";

export class RegistryUnavailable extends Error {
  constructor(binary: string) {
    super(`the OCI registry server ${binary} is not installed; install it with: apt-get install docker-registry`);
    this.name = "RegistryUnavailable";
  }
}

export class RegistryStartFailed extends Error {
  constructor(detail: string) {
    super(`docker-registry did not start: ${detail}`);
    this.name = "RegistryStartFailed";
  }
}

export interface RegistryOptions {
  /** Where config, htpasswd and storage go; a temp dir (removed by stop) when omitted. */
  dir?: string;
  username?: string;
  password?: string;
  binary?: string | undefined;
  startTimeoutMs?: number;
}

export interface Registry {
  /** host:port */
  url: string;
  username: string;
  password: string;
  dir: string;
  stop(): Promise<void>;
}

export function registryInstalled(binary = REGISTRY_BINARY): boolean {
  return existsSync(binary);
}

export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function configYaml(dir: string, port: number): string {
  return `version: 0.1
log:
  level: error
  accesslog: {disabled: true}
storage:
  filesystem: {rootdirectory: ${join(dir, "data")}}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:${port}
  secret: ${randomBytes(16).toString("hex")}
auth:
  htpasswd: {realm: basic-realm, path: ${join(dir, "htpasswd")}}
`;
}

async function waitUntilServing(url: string, child: ChildProcess, stderr: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new RegistryStartFailed(`exited (${child.exitCode ?? child.signalCode}): ${stderr().trim()}`);
    try {
      const res = await fetch(`http://${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.status === 401) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new RegistryStartFailed(`GET http://${url}/v2/ did not answer 401 within ${timeoutMs} ms: ${stderr().trim()}`);
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<Registry> {
  const binary = opts.binary ?? REGISTRY_BINARY;
  if (!registryInstalled(binary)) throw new RegistryUnavailable(binary);
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "sim-registry-"));
  mkdirSync(dir, { recursive: true });
  const username = opts.username ?? "ci";
  const password = opts.password ?? randomBytes(12).toString("hex");
  // Cost 4: the registry checks the hash on every request.
  const hash = await Bun.password.hash(password, { algorithm: "bcrypt", cost: 4 });
  writeFileSync(join(dir, "htpasswd"), `${username}:${hash}\n`, { mode: 0o600 });

  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const configPath = join(dir, "config.yml");
    writeFileSync(configPath, configYaml(dir, port));
    let err = "";
    const child = spawn(binary, ["serve", configPath], { stdio: ["ignore", "ignore", "pipe"] });
    child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const url = `127.0.0.1:${port}`;
    try {
      await waitUntilServing(url, child, () => err, opts.startTimeoutMs ?? 15_000);
    } catch (e) {
      child.kill("SIGKILL");
      lastError = e as Error;
      if (!/address already in use/.test(err)) break;
      continue;
    }
    let stopped: Promise<void> | undefined;
    return {
      url,
      username,
      password,
      dir,
      stop: () =>
        (stopped ??= (async () => {
          if (child.exitCode === null && child.signalCode === null) {
            const exited = new Promise((r) => child.once("exit", r));
            child.kill("SIGTERM");
            const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
            await exited;
            clearTimeout(timer);
          }
          if (ownDir) rmSync(dir, { recursive: true, force: true });
        })()),
    };
  }
  if (ownDir) rmSync(dir, { recursive: true, force: true });
  throw lastError ?? new RegistryStartFailed("unknown error");
}
