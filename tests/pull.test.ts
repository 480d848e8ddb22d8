// The compiled `pull` against the real registry, reached through a front
// the test controls: a registry that is down, refuses the credentials, lost
// the tag, or serves content that does not match its digest; a disk below
// the floor; a second pull. Each leaves the pinned image in service (image.lock
// untouched, a slot still clones it and serves a job) and says why in one line.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FileLock } from "../lib/core/flock.ts";
import { readImageLock } from "../lib/image/pin.ts";
import { parseLogLines } from "../sim/logs.ts";
import { startWorld, type World } from "../sim/world.ts";
import { ensureBinaries, events, loop, start, worldEnv } from "./helpers/e2e.ts";
import { startProxy, type Handler, type Proxy } from "./helpers/registry-proxy.ts";
import { spawnSync } from "node:child_process";

let world: World;
let proxy: Proxy;
let handler: Handler;
const forward: Handler = (_req, _url, fwd) => fwd();
let n = 0;

beforeAll(async () => {
  ensureBinaries(["pull", "loop"]);
  world = await startWorld({ registry: "required", tart: { boot_ms: 100 } });
  handler = forward;
  proxy = startProxy(world.registry!.url, (req, url, fwd) => handler(req, url, fwd));
});
// A test that makes the registry misbehave does so for itself only: each starts with the plain front.
beforeEach(() => {
  handler = forward;
});
afterAll(async () => {
  proxy?.stop();
  await world?.stop();
});

/** A config of its own (state dir) per test; the image through the proxy unless told. */
function config(image: Record<string, unknown> = {}): { path: string; stateDir: string } {
  const name = `p${++n}`;
  const stateDir = join(world.dir, name, "state");
  const path = world.writeConfig({
    image: { ref: `${proxy.host}/macos-runner:sonoma`, min_free_gb: 1, ...image },
    host: { state_dir: stateDir, log_dir: join(world.dir, name, "logs") },
  }, `${name}.yml`);
  return { path, stateDir };
}

async function pull(cfg: string, ...args: string[]) {
  const r = await start(world, "pull", ["--config", cfg, ...args]).done;
  expect(r.stderr).not.toContain(world.registry!.password);
  expect(r.stdout).not.toContain(world.registry!.password);
  return r;
}

const lockText = (stateDir: string) => readFileSync(join(stateDir, "image.lock"), "utf8");
const cachedOci = () => {
  const r = spawnSync("tart", ["list", "--source", "oci", "--format", "json"], { env: worldEnv(world), encoding: "utf8" });
  return (JSON.parse(r.stdout) as { Name: string }[]).map((e) => e.Name);
};

/** Exactly one error line, and it says `what`. */
function oneErrorLine(stderr: string, ...what: string[]): void {
  const errors = parseLogLines(stderr).filter((l) => l.level === "error");
  expect(errors).toHaveLength(1);
  for (const w of what) expect(errors[0]!.msg).toContain(w);
}

describe("pinning", () => {
  test("the first pull pins the tag's digest (pulled by digest into tart's cache); the next finds nothing to do", async () => {
    const c = config();
    const r = await pull(c.path);
    expect(r.code).toBe(0);
    const lock = readImageLock(c.stateDir)!;
    const head = await fetch(`http://${world.registry!.url}/v2/macos-runner/manifests/sonoma`, {
      method: "HEAD",
      headers: { Accept: "application/vnd.oci.image.manifest.v1+json", Authorization: `Basic ${Buffer.from(`${world.registry!.username}:${world.registry!.password}`).toString("base64")}` },
    });
    expect(lock.digest).toBe(head.headers.get("docker-content-digest")!);
    expect(lock.ref).toBe(`${proxy.host}/macos-runner:sonoma`);
    expect(lock.previous).toBeUndefined();
    expect(cachedOci()).toContain(`${proxy.host}/macos-runner@${lock.digest}`);
    const again = await pull(c.path);
    expect(again.code).toBe(0);
    expect(events(again.lines, "pull.current")).toHaveLength(1);
    expect(lockText(c.stateDir)).toBe(`${JSON.stringify(lock, null, 2)}\n`);
  }, 60_000);

  test("a local VM name as image.ref: nothing to pin, exit 0", async () => {
    const c = config({ ref: "macos-runner-sonoma", username: null, password_path: null });
    const r = await pull(c.path);
    expect(r.code).toBe(0);
    expect(events(r.lines, "pull.nothing")[0]?.msg).toBe("image.ref macos-runner-sonoma is a local VM name (no registry): nothing to pull or pin");
  });

  test("--rollback with no previous image fails and says why", async () => {
    const c = config();
    expect((await pull(c.path)).code).toBe(0);
    const r = await pull(c.path, "--rollback");
    expect(r.code).toBe(1);
    oneErrorLine(r.stderr, "no previous image to roll back to");
  }, 60_000);

  test("--help documents the exit codes", async () => {
    const r = await pull("x", "--help");
    expect(r.code).toBe(0);
    for (const line of ["--rollback", "--status", "--runner-check", " 69  unavailable", " 75  tempfail", " 78  config", " 65  bad-input"]) expect(r.stdout).toContain(line);
  });
});

describe("failures leave the pinned image in service", () => {
  let c: { path: string; stateDir: string };
  let pinned: string;
  let before: string;

  beforeAll(async () => {
    handler = forward;
    c = config();
    expect((await pull(c.path)).code).toBe(0);
    pinned = readImageLock(c.stateDir)!.digest;
    before = lockText(c.stateDir);
  });

  const keeps = (stderr: string) => {
    expect(lockText(c.stateDir)).toBe(before);
    expect(stderr).toContain(`the pinned image ${pinned.slice(0, 19)} stays in service`);
  };

  test("wrong credentials: exit 78, names the user and the config keys", async () => {
    const wrong = join(world.dir, "wrong-password");
    writeFileSync(wrong, "not-the-password\n", { mode: 0o600 });
    const bad = world.writeConfig({ image: { ref: `${proxy.host}/macos-runner:sonoma`, min_free_gb: 1, password_path: wrong }, host: { state_dir: c.stateDir, log_dir: join(world.dir, "wrong-logs") } }, `wrong-${n}.yml`);
    const r = await pull(bad);
    expect(r.code).toBe(78);
    oneErrorLine(r.stderr, `refused the credentials for user ${world.registry!.username} (401)`, "check image.username and image.password_path");
    expect(r.stderr).not.toContain("not-the-password");
    keeps(r.stderr);
  });

  test("the tag is gone from the registry: exit 78", async () => {
    handler = (_req, url, fwd) => (url.pathname.endsWith("/manifests/sonoma") ? new Response('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', { status: 404 }) : fwd());
    const r = await pull(c.path);
    expect(r.code).toBe(78);
    oneErrorLine(r.stderr, "looking up macos-runner:sonoma: not found", "(404)");
    keeps(r.stderr);
  });

  test("the registry serves a manifest that does not match its digest: exit 65, nothing pinned", async () => {
    const { digest: fresh } = await world.publishVersion({ marker: "mismatch" });
    handler = async (req, url, fwd) => {
      const res = await fwd();
      if (req.method !== "GET" || !url.pathname.includes("/manifests/sha256:")) return res;
      return new Response(`${await res.text()} `, { status: res.status, headers: res.headers });
    };
    const r = await pull(c.path);
    expect(r.code).toBe(65);
    oneErrorLine(r.stderr, "does not match its digest");
    keeps(r.stderr);
    expect(cachedOci()).not.toContain(`${proxy.host}/macos-runner@${fresh}`);
  });

  test("a manifest that changes between our check and tart's pull: caught in tart's cache, the stray copy deleted", async () => {
    // A version newer than the pinned one that no test has pulled into tart's cache yet.
    await world.publishVersion({ marker: "changed-under-us" });
    let gets = 0;
    handler = async (req, url, fwd) => {
      const res = await fwd();
      if (req.method !== "GET" || !url.pathname.includes("/manifests/sha256:") || ++gets === 1) return res;
      return new Response(`${await res.text()} `, { status: res.status, headers: res.headers });
    };
    const cachedBefore = cachedOci();
    const r = await pull(c.path);
    expect(r.code).toBe(65);
    oneErrorLine(r.stderr, "but its cache has no such digest", "now deleted", "not pinning it");
    keeps(r.stderr);
    expect(cachedOci()).toEqual(cachedBefore);
  }, 60_000);

  test("less free disk than the floor: exit 69, nothing downloaded", async () => {
    // A version newer than the pinned one, so there is something to download.
    await world.publishVersion({ marker: "over-the-floor" });
    const small = world.writeConfig({ image: { ref: `${proxy.host}/macos-runner:sonoma`, min_free_gb: 1_000_000 }, host: { state_dir: c.stateDir, log_dir: join(world.dir, "floor-logs") } }, `floor-${n}.yml`);
    const seen = proxy.seen.length;
    const r = await pull(small);
    expect(r.code).toBe(69);
    oneErrorLine(r.stderr, "below the floor of 1000000.0 GB (image.min_free_gb)");
    keeps(r.stderr);
    // Only the small config blob (for the runner-version label); no disk layer was downloaded.
    expect(proxy.seen.slice(seen).filter((s) => s.includes("/blobs/"))).toHaveLength(1);
  });

  test("another pull holds the lock: exit 75, touches nothing", async () => {
    const held = FileLock.tryAcquire(join(c.stateDir, "pull.lock"))!;
    try {
      const r = await pull(c.path);
      expect(r.code).toBe(75);
      oneErrorLine(r.stderr, `another pull (pid ${process.pid}) holds`);
      expect(lockText(c.stateDir)).toBe(before);
    } finally {
      held.release();
    }
  });

  test("the registry is down: exit 75; a slot still clones the pinned image from the cache and serves a job", async () => {
    const port = Number(proxy.host.split(":")[1]);
    proxy.stop();
    try {
      const r = await pull(c.path);
      expect(r.code).toBe(75);
      oneErrorLine(r.stderr, `cannot reach the registry at http://${proxy.host}`);
      keeps(r.stderr);

      const job = await world.gh.enqueueJob({ name: "while-the-registry-is-down", script: "echo ok" });
      const cycle = await loop(world, c.path);
      expect(cycle.code).toBe(0);
      expect(events(cycle.lines, "cycle.start")[0]?.image).toBe(pinned);
      expect((await world.gh.job(job.id)).result).toBe("Succeeded");
    } finally {
      proxy = startProxy(world.registry!.url, (req, url, fwd) => handler(req, url, fwd), port);
    }
  }, 60_000);
});
