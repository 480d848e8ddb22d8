// sim/tart pull/clone against the real registry (docker-registry on
// loopback): progress lines, tag -> digest cache semantics, a bumped tag,
// credentials and registry errors; and the image publisher's manifest shape.
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { IMAGE_REPOSITORY, SIM_BIN, startTartFixture, type TartFixture } from "../../sim/image/fixture.ts";
import { sortedJSON } from "../../sim/image/publish.ts";
import { withTart } from "./helpers.ts";

// Each test that asks a registry gets one and a tart cache of its own: pulls, bumps and
// deletes change both, and the tests run at once, in any order.
async function withRegistry(fn: (fx: TartFixture) => Promise<void> | void): Promise<void> {
  const fx = await startTartFixture({ registry: true, settings: { boot_ms: 100, ssh_port: 2222 } });
  try {
    await fn(fx);
  } finally {
    await fx.stop();
  }
}

function tartWith(fx: TartFixture, env: Record<string, string | undefined>, ...args: string[]) {
  const merged: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...fx.env, ...env })) if (v !== undefined) merged[k] = v;
  const r = spawnSync(join(SIM_BIN, "tart"), args, { env: merged, encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const auth = (fx: TartFixture) => `Basic ${Buffer.from(`${fx.registry!.username}:${fx.registry!.password}`).toString("base64")}`;

async function remoteDigest(fx: TartFixture): Promise<string> {
  const res = await fetch(`http://${fx.registry!.url}/v2/${IMAGE_REPOSITORY}/manifests/sonoma`, {
    method: "HEAD",
    headers: { Authorization: auth(fx), Accept: "application/vnd.oci.image.manifest.v1+json" },
  });
  expect(res.status).toBe(200);
  return res.headers.get("docker-content-digest")!;
}

const tagLink = (fx: TartFixture) => join(fx.tartHome, "cache", "OCIs", encodeURIComponent(fx.registry!.url), IMAGE_REPOSITORY, "sonoma");
const pinned = (fx: TartFixture, digest: string) => `${fx.registry!.url}/${IMAGE_REPOSITORY}@${digest}`;

describe.concurrent("published image", () => {
  test("manifest: compact sorted JSON, tart's media types and annotations, digest = sha256 of the bytes", () => withRegistry(async (fx) => {
    const res = await fetch(`http://${fx.registry!.url}/v2/${IMAGE_REPOSITORY}/manifests/sonoma`, {
      headers: { Authorization: auth(fx), Accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    const raw = Buffer.from(await res.arrayBuffer());
    const manifest = JSON.parse(raw.toString());
    expect(raw.toString()).toBe(sortedJSON(manifest));
    expect(`sha256:${new Bun.CryptoHasher("sha256").update(raw).digest("hex")}`).toBe(await remoteDigest(fx));
    expect(manifest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(manifest.config.mediaType).toBe("application/vnd.oci.image.config.v1+json");
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([
      "application/vnd.cirruslabs.tart.config.v1",
      "application/vnd.cirruslabs.tart.disk.v2",
      "application/vnd.cirruslabs.tart.nvram.v1",
    ]);
    expect(Object.keys(manifest.layers[1].annotations).sort()).toEqual([
      "org.cirruslabs.tart.uncompressed-content-digest",
      "org.cirruslabs.tart.uncompressed-size",
    ]);
    expect(Object.keys(manifest.annotations).sort()).toEqual(["org.cirruslabs.tart.uncompressed-disk-size", "org.cirruslabs.tart.upload-time"]);
    // docker-registry answers 404 without the OCI Accept header.
    const plain = await fetch(`http://${fx.registry!.url}/v2/${IMAGE_REPOSITORY}/manifests/sonoma`, { headers: { Authorization: auth(fx) } });
    expect(plain.status).toBe(404);
  }));
});

describe.concurrent("pull and clone", () => {
  test("clone of an uncached tag pulls it (pull's lines minus the first), links the tag, copies the VM", () => withRegistry(async (fx) => {
    const digest = await remoteDigest(fx);
    const r = fx.tart("clone", "--insecure", fx.imageRef, "c1");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("pulling manifest...\npulling disk (0.0 GB compressed)...\n0%\n100%\npulling NVRAM...\n");
    expect(lstatSync(tagLink(fx)).isSymbolicLink()).toBe(true);
    expect(readlinkSync(tagLink(fx))).toBe(digest);
    expect(existsSync(join(tagLink(fx), "manifest.json"))).toBe(true);
    expect(existsSync(join(fx.tartHome, "vms", "c1", "disk.img", "Users", "admin", "actions-runner", "run.sh"))).toBe(true);
    expect(existsSync(join(fx.tartHome, "vms", "c1", "manifest.json"))).toBe(false);
    const list = JSON.parse(fx.tart("list", "--source", "oci", "--format", "json").stdout) as { Name: string; Source: string }[];
    expect(list.map((e) => e.Name)).toEqual([fx.imageRef, pinned(fx, digest)]);
    expect(list.every((e) => e.Source === "OCI")).toBe(true);
  }));

  test("pull of a cached tag: already cached and linked", () => withRegistry(async (fx) => {
    expect(fx.tart("pull", "--insecure", fx.imageRef).code).toBe(0);
    const r = fx.tart("pull", "--insecure", fx.imageRef);
    expect(r).toEqual({
      code: 0,
      stdout: `pulling ${fx.imageRef}...\npulling manifest...\n${pinned(fx, await remoteDigest(fx))} image is already cached and linked!\n`,
      stderr: "",
    });
  }));

  test("a bumped tag: clone keeps the cached version without asking the registry; pull fetches the new one", () => withRegistry(async (fx) => {
    expect(fx.tart("pull", "--insecure", fx.imageRef).code).toBe(0);
    const old = await remoteDigest(fx);
    const bumped = await fx.republish((dir) => writeFileSync(join(dir, "disk.img", "Users", "admin", "VERSION"), "2\n"));
    const fresh = await remoteDigest(fx);
    expect(fresh).not.toBe(old);
    expect(bumped).toBe(pinned(fx, fresh));

    const c = fx.tart("clone", "--insecure", fx.imageRef, "c2");
    expect(c).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(existsSync(join(fx.tartHome, "vms", "c2", "disk.img", "Users", "admin", "VERSION"))).toBe(false);

    const p = fx.tart("pull", "--insecure", fx.imageRef);
    expect(p.code).toBe(0);
    expect(p.stdout).toContain("pulling disk (");
    expect(readlinkSync(tagLink(fx))).toBe(fresh);
    // the old digest is no longer referenced: garbage-collected
    expect(existsSync(join(tagLink(fx), "..", old))).toBe(false);
    expect(fx.tart("clone", fx.imageRef, "c3").code).toBe(0);
    expect(readFileSync(join(fx.tartHome, "vms", "c3", "disk.img", "Users", "admin", "VERSION"), "utf8")).toBe("2\n");
  }));

  test("pull by digest keeps the entry as explicitly pulled", () => withRegistry(async (fx) => {
    const digest = await remoteDigest(fx);
    expect(fx.tart("pull", "--insecure", fx.imageRef).code).toBe(0);
    fx.tart("delete", fx.imageRef);
    const r = fx.tart("pull", "--insecure", pinned(fx, digest));
    expect(r.code).toBe(0);
    expect(existsSync(join(tagLink(fx), "..", digest, ".explicitly-pulled"))).toBe(true);
    expect(fx.tart("list", "-q", "--source", "oci").stdout).toBe(`${pinned(fx, digest)}\n`);
    expect(fx.tart("delete", pinned(fx, digest)).code).toBe(0);
    expect(fx.tart("list", "-q", "--source", "oci").stdout).toBe("");
  }));

  test("a missing tag: UnexpectedHTTPStatusCode 404, exit 1", () => withRegistry((fx) => {
    const r = fx.tart("pull", "--insecure", `${fx.registry!.url}/${IMAGE_REPOSITORY}:nope`);
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith('Error: UnexpectedHTTPStatusCode(when: "pulling manifest", code: 404, details: "');
    expect(r.stderr).toContain("MANIFEST_UNKNOWN");
  }));

  test("credentials: none, or for another host, get 401", () => withRegistry((fx) => {
    for (const env of [
      { TART_REGISTRY_USERNAME: undefined, TART_REGISTRY_PASSWORD: undefined },
      { TART_REGISTRY_HOSTNAME: "registry.example.com" },
      { TART_REGISTRY_PASSWORD: "wrong" },
    ]) {
      const r = tartWith(fx, env, "clone", "--insecure", `${fx.registry!.url}/${IMAGE_REPOSITORY}:sonoma`, "nocreds");
      expect(r.code).toBe(1);
      expect(r.stderr).toStartWith('Error: UnexpectedHTTPStatusCode(when: "pulling manifest", code: 401, ');
    }
    expect(tartWith(fx, { TART_REGISTRY_HOSTNAME: fx.registry!.url }, "pull", "--insecure", fx.imageRef).code).toBe(0);
  }));

  test("prune --space-budget 0 empties the OCI cache; local VMs stay", () => withRegistry((fx) => {
    expect(fx.tart("pull", "--insecure", fx.imageRef).code).toBe(0);
    expect(fx.tart("clone", fx.imageRef, "c1").code).toBe(0);
    expect(fx.tart("list", "-q", "--source", "oci").stdout).not.toBe("");
    expect(fx.tart("prune", "--space-budget", "0")).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(fx.tart("list", "-q", "--source", "oci").stdout).toBe("");
    expect(fx.tart("list", "-q", "--source", "local").stdout).toContain("c1\n");
  }));

  test("an unreachable registry: Error:, exit 1", () => withTart({}, (fx) => {
    const r = fx.tart("pull", "--insecure", "127.0.0.1:1/macos-runner:sonoma");
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("Error: ");
  }));
});

describe("startRegistry", () => {
  test("a missing docker-registry binary says how to install it", async () => {
    const { startRegistry, RegistryUnavailable } = await import("../../sim/registry.ts");
    const err = await startRegistry({ binary: "/nonexistent/docker-registry" }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(RegistryUnavailable);
    expect((err as Error).message).toContain("apt-get install docker-registry");
  });
});
