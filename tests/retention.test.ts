// The compiled `retention` against the real docker-registry: the newest N
// images stay (by tart's upload-time) with every tag on them, the others are
// deleted by digest, the kept ones still pull with the
// fake tart, and garbage-collect frees the deleted images' blobs.
import { afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseLogLines } from "../sim/logs.ts";
import { IMAGE_REPOSITORY, startTartFixture, type TartFixture } from "../sim/image/fixture.ts";
import { publishImage } from "../sim/image/publish.ts";
import { BIN, ensureBinaries } from "./helpers/e2e.ts";
import { startProxy } from "./helpers/registry-proxy.ts";

let fx: TartFixture;
const digests: Record<string, string> = {};
const diskLayer: Record<string, string> = {};
let passwordFile: string;

const auth = () => ({ Authorization: `Basic ${Buffer.from(`${fx.registry!.username}:${fx.registry!.password}`).toString("base64")}` });
const accept = { Accept: "application/vnd.oci.image.manifest.v1+json" };

async function publish(tag: string, marker: string, also: string[] = []): Promise<void> {
  const dir = mkdtempSync(join(fx.dir, "v-"));
  cpSync(fx.goldenDir, dir, { recursive: true });
  writeFileSync(join(dir, "disk.img", "Users", "admin", "image-version"), marker);
  const p = await publishImage(dir, `${fx.registry!.url}/${IMAGE_REPOSITORY}:${tag}`, { insecure: true, username: fx.registry!.username, password: fx.registry!.password });
  digests[tag] = p.digest;
  const raw = await (await fetch(`http://${fx.registry!.url}/v2/${IMAGE_REPOSITORY}/manifests/${tag}`, { headers: { ...auth(), ...accept } })).arrayBuffer();
  diskLayer[tag] = (JSON.parse(Buffer.from(raw).toString()) as { layers: { digest: string }[] }).layers[1]!.digest;
  // Another tag on the same manifest bytes: the same digest.
  for (const t of also) {
    const put = await fetch(`http://${fx.registry!.url}/v2/${IMAGE_REPOSITORY}/manifests/${t}`, { method: "PUT", body: raw, headers: { ...auth(), "Content-Type": accept.Accept } });
    expect(put.headers.get("docker-content-digest")).toBe(p.digest);
    digests[t] = p.digest;
  }
  rmSync(dir, { recursive: true, force: true });
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(join(BIN, "retention"), args, { env: { ...process.env, ...fx.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const tags = async () =>
  (((await (await fetch(`http://${fx.registry!.url}/v2/${IMAGE_REPOSITORY}/tags/list`, { headers: auth() })).json()) as { tags: string[] | null }).tags ?? []).sort();
const blobStatus = async (digest: string) => (await fetch(`http://${fx.registry!.url}/v2/${IMAGE_REPOSITORY}/blobs/${digest}`, { method: "HEAD", headers: auth() })).status;

beforeAll(() => ensureBinaries(["retention"]));

// Each test deletes images, so each gets a registry of its own holding the same five.
beforeEach(async () => {
  for (const record of [digests, diskLayer]) for (const tag of Object.keys(record)) delete record[tag];
  fx = await startTartFixture({ registry: true });
  // sonoma (the fixture's) is the oldest; each publish is later than the one before.
  await publish("week-1", "1");
  await publish("week-2", "2");
  await publish("week-3", "3", ["stable"]);
  await publish("week-4", "4");
  passwordFile = join(fx.dir, "registry-admin");
  writeFileSync(passwordFile, `${fx.registry!.password}\n`, { mode: 0o600 });
});
afterEach(async () => {
  await fx?.stop();
});

const common = () => ["--registry", fx.registry!.url, "--insecure", "--username", fx.registry!.username, "--password-file", passwordFile];

describe("retention", () => {
  test("--dry-run lists what would go and deletes nothing", async () => {
    const r = await run([...common(), "--keep", "2", "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${IMAGE_REPOSITORY}: would delete ${digests["week-1"]} (week-1)`);
    expect(await tags()).toEqual(["sonoma", "stable", "week-1", "week-2", "week-3", "week-4"]);
  });

  test("keeps the newest 2 images with all their tags, deletes the rest by digest; kept ones still pull", async () => {
    const proxy = startProxy(fx.registry!.url);
    try {
      const r = await run(["--registry", proxy.host, "--insecure", "--username", fx.registry!.username, "--password-file", passwordFile, "--keep", "2"]);
      expect(r.stderr.split("\n").filter(Boolean).map((l) => JSON.parse(l).event)).toEqual(["retention.deleted", "retention.deleted", "retention.deleted"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`${IMAGE_REPOSITORY}: keep week-4, stable, week-3`);
      expect(r.stdout).toContain("garbage-collect -m");
      // DELETE by digest only (docker-registry refuses a tag with 400).
      const deletes = proxy.seen.filter((s) => s.startsWith("DELETE"));
      // week-1, week-2 and the fixture's sonoma, each by its digest.
      expect(deletes).toHaveLength(3);
      for (const t of ["week-1", "week-2"]) expect(deletes).toContain(`DELETE /v2/${IMAGE_REPOSITORY}/manifests/${digests[t]}`);
      expect(deletes.every((d) => /\/manifests\/sha256:[0-9a-f]{64}$/.test(d))).toBe(true);
    } finally {
      proxy.stop();
    }
    expect(await tags()).toEqual(["stable", "week-3", "week-4"]);
    for (const t of ["week-3", "week-4", "stable"]) {
      const pulled = fx.tart("pull", "--insecure", `${fx.registry!.url}/${IMAGE_REPOSITORY}:${t}`);
      expect(pulled.code).toBe(0);
    }
    const gone = fx.tart("pull", "--insecure", `${fx.registry!.url}/${IMAGE_REPOSITORY}:week-1`);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("code: 404");
  }, 60_000);

  test("--gc-config runs the garbage collector: deleted images' blobs go, kept ones still pull", async () => {
    // First a run without the collector: week-1, week-2 and sonoma deleted, their blobs still stored.
    expect((await run([...common(), "--keep", "2"])).code).toBe(0);
    expect(await tags()).toEqual(["stable", "week-3", "week-4"]);
    expect(await blobStatus(diskLayer["week-1"]!)).toBe(200);
    const r = await run([...common(), "--keep", "1", "--gc-config", join(fx.registry!.dir, "config.yml")]);
    expect(r.code).toBe(0);
    expect(parseLogLines(r.stderr).map((l) => l.event)).toEqual(["retention.deleted", "retention.gc"]);
    expect(await tags()).toEqual(["week-4"]);
    expect(await blobStatus(diskLayer["week-1"]!)).toBe(404);
    expect(await blobStatus(diskLayer["week-3"]!)).toBe(404);
    rmSync(join(fx.tartHome, "cache"), { recursive: true, force: true });
    expect(fx.tart("clone", "--insecure", `${fx.registry!.url}/${IMAGE_REPOSITORY}:week-4`, "after-gc").code).toBe(0);
  }, 60_000);

  test("bad input: missing flags, a world-readable password file, wrong credentials", async () => {
    expect((await run(["--keep", "2"])).code).toBe(64);
    const zero = await run([...common(), "--keep", "0"]);
    expect(zero.code).toBe(64);
    expect(zero.stderr).toContain("--keep N must be a whole number of at least 1");
    const open = join(fx.dir, "open-password");
    writeFileSync(open, "x\n", { mode: 0o644 });
    const loose = await run(["--registry", fx.registry!.url, "--insecure", "--username", "ci", "--password-file", open, "--keep", "2"]);
    expect(loose.code).toBe(78);
    expect(loose.stderr).toContain("secrets must be 0600");
    const wrong = join(fx.dir, "wrong-password");
    writeFileSync(wrong, "wrong-password-xyz\n", { mode: 0o600 });
    const refused = await run(["--registry", fx.registry!.url, "--insecure", "--username", "ci", "--password-file", wrong, "--keep", "2"]);
    expect(refused.code).toBe(78);
    expect(refused.stderr).toContain("check --username and --password-file");
    expect(refused.stderr).not.toContain("wrong-password-xyz");
  });
});
