// registry/config.yml is a config the real docker-registry serves: started
// here with only its paths and address moved into a temp dir (TLS with a
// self-signed certificate, a bcrypt htpasswd), it answers HTTPS with its
// Basic realm, lets a manifest be deleted by digest, and refuses a tag.
// A client that does not trust the certificate gets the "trust its CA" error.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { exitCode } from "../lib/core/errors.ts";
import { RegistryClient, RegistryError } from "../lib/image/registry.ts";
import { freePort, REGISTRY_BINARY } from "../sim/registry.ts";
import { BIN, ensureBinaries, until } from "./helpers/e2e.ts";

const SHIPPED = join(import.meta.dir, "..", "registry", "config.yml");
let dir: string;
let child: ChildProcess;
let host: string;
let ca: string;
const password = "registry-test-password";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "registry-config-"));
  mkdirSync(join(dir, "tls"));
  const cert = join(dir, "tls", "registry.crt");
  const key = join(dir, "tls", "registry.key");
  const made = spawnSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-sha256", "-days", "1", "-nodes", "-keyout", key, "-out", cert,
    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { encoding: "utf8" });
  if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`);
  ca = readFileSync(cert, "utf8");
  writeFileSync(join(dir, "htpasswd"), `ci:${await Bun.password.hash(password, { algorithm: "bcrypt", cost: 4 })}\n`);

  const config = parse(readFileSync(SHIPPED, "utf8"));
  const port = await freePort();
  host = `127.0.0.1:${port}`;
  config.storage.filesystem.rootdirectory = join(dir, "data");
  config.http.addr = host;
  config.http.tls = { certificate: cert, key };
  config.auth.htpasswd.path = join(dir, "htpasswd");
  config.log = { level: "error", accesslog: { disabled: true } };
  writeFileSync(join(dir, "config.yml"), stringify(config));
  child = spawn(REGISTRY_BINARY, ["serve", join(dir, "config.yml")], { stdio: "ignore" });
  await until("the registry to serve HTTPS", async () => {
    const res = await fetch(`https://${host}/v2/`, { tls: { ca } }).catch(() => undefined);
    return res?.status === 401;
  }, 15_000, 50);
});
afterAll(() => {
  child?.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

const basic = () => `Basic ${Buffer.from(`ci:${password}`).toString("base64")}`;

/** Pushes a config-only image to macos-runner:<tag>; the manifest PUT's response. */
async function pushImage(tag: string): Promise<Response> {
  const config = "{}";
  const digest = `sha256:${new Bun.CryptoHasher("sha256").update(config).digest("hex")}`;
  const start = await fetch(`https://${host}/v2/macos-runner/blobs/uploads/`, { method: "POST", tls: { ca }, headers: { Authorization: basic() } });
  const location = new URL(start.headers.get("location")!, `https://${host}`);
  location.searchParams.set("digest", digest);
  expect((await fetch(location, { method: "PUT", body: config, tls: { ca }, headers: { Authorization: basic() } })).status).toBe(201);
  const manifest = JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json", config: { mediaType: "application/vnd.oci.image.config.v1+json", digest, size: 2 }, layers: [] });
  const pushed = await fetch(`https://${host}/v2/macos-runner/manifests/${tag}`, {
    method: "PUT", body: manifest, tls: { ca }, headers: { Authorization: basic(), "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
  });
  expect(pushed.status).toBe(201);
  return pushed;
}

describe("registry/config.yml", () => {
  test("the settings the README promises", () => {
    const c = parse(readFileSync(SHIPPED, "utf8"));
    expect(c.storage.delete.enabled).toBe(true);
    expect(c.storage.maintenance.uploadpurging).toMatchObject({ enabled: true, dryrun: false });
    expect(c.storage.maintenance.readonly.enabled).toBe(false);
    expect(Object.keys(c.http.tls).sort()).toEqual(["certificate", "key"]);
    expect(c.auth.htpasswd.path).toBe("/etc/docker/registry/htpasswd");
  });

  test("served over TLS with htpasswd (bcrypt): 401 with its realm, 200 with the password", async () => {
    const anon = await fetch(`https://${host}/v2/`, { tls: { ca } });
    expect(anon.status).toBe(401);
    expect(anon.headers.get("www-authenticate")).toBe('Basic realm="macos-runner-registry"');
    expect((await fetch(`https://${host}/v2/`, { tls: { ca }, headers: { Authorization: basic() } })).status).toBe(200);
  });

  test("delete is enabled: by digest 202, by tag 400", async () => {
    const pushed = await pushImage("v1");
    const byTag = await fetch(`https://${host}/v2/macos-runner/manifests/v1`, { method: "DELETE", tls: { ca }, headers: { Authorization: basic() } });
    expect(byTag.status).toBe(400);
    const byDigest = await fetch(`https://${host}/v2/macos-runner/manifests/${pushed.headers.get("docker-content-digest")}`, { method: "DELETE", tls: { ca }, headers: { Authorization: basic() } });
    expect(byDigest.status).toBe(202);
  });

  test("a host that does not trust the certificate: a tls error, exit kind config, saying to trust the CA", async () => {
    const err = (await new RegistryClient({ host, credentials: { username: "ci", password } }).headManifest("macos-runner", "v1").catch((e) => e)) as RegistryError;
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.failure).toBe("tls");
    expect(err.exitCode).toBe(exitCode("config"));
    expect(err.message).toContain("security add-trusted-cert");
  });

  test("retention (compiled) trusts it through NODE_EXTRA_CA_CERTS, as the README says for Linux", async () => {
    ensureBinaries(["retention"]);
    // An image of its own for retention to list: the delete test's may not exist yet, and it deletes it.
    await pushImage("retained");
    writeFileSync(join(dir, "ci-password"), `${password}\n`, { mode: 0o600 });
    const args = ["--registry", host, "--keep", "2", "--dry-run", "--username", "ci", "--password-file", join(dir, "ci-password")];
    const untrusted = spawnSync(join(BIN, "retention"), args, { encoding: "utf8" });
    expect(untrusted.status).toBe(78);
    const trusted = spawnSync(join(BIN, "retention"), args, { encoding: "utf8", env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, "tls", "registry.crt") } });
    expect(trusted.stderr).toBe("");
    expect(trusted.status).toBe(0);
    expect(trusted.stdout).toContain("macos-runner: keep");
  });
});
