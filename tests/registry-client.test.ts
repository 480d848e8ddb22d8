// lib/registry against the real docker-registry (Basic auth, htpasswd bcrypt),
// and through a token-auth front (Bearer, as GHCR or Harbor answer), plus
// the failures a host meets: wrong credentials, a missing tag, a registry
// that is down, slow or failing. Errors are checked for what they tell.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exitCode } from "../lib/core/errors.ts";
import { parseChallenge, readImageInfo, RegistryClient, RegistryError, RUNNER_VERSION_LABEL } from "../lib/image/registry.ts";
import { buildGoldenImage } from "../sim/image/build.ts";
import { publishImage } from "../sim/image/publish.ts";
import { freePort, startRegistry, type Registry } from "../sim/registry.ts";
import { startProxy } from "./helpers/registry-proxy.ts";

let registry: Registry;
let dir: string;
let digest: string;
const NS = "macos-runner";

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "registry-client-"));
  registry = await startRegistry({ dir: join(dir, "registry") });
  await buildGoldenImage(join(dir, "golden"), { authorizedKeys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test" });
  ({ digest } = await publishImage(join(dir, "golden"), `${registry.url}/${NS}:v1`, {
    insecure: true, username: registry.username, password: registry.password, labels: { [RUNNER_VERSION_LABEL]: "2.330.0" },
  }));
});
afterAll(async () => {
  await registry?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const client = (over: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}) =>
  new RegistryClient({ host: registry.url, insecure: true, credentials: { username: registry.username, password: registry.password }, credentialsSource: "image.username and image.password_path", ...over });

async function failure(p: Promise<unknown>): Promise<RegistryError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RegistryError) return err;
    throw err;
  }
  throw new Error("expected a RegistryError");
}

describe("against docker-registry (Basic auth)", () => {
  test("HEAD gives the tag's digest: sha256 of the manifest bytes, as GET computes it", async () => {
    const c = client();
    const head = await c.headManifest(NS, "v1");
    expect(head.digest).toBe(digest);
    expect((await c.getManifest(NS, "v1")).digest).toBe(digest);
    expect((await c.headManifest(NS, digest)).digest).toBe(digest);
  });

  test("image info: the runner-version label from the OCI config, tart's disk size and upload time", async () => {
    const info = await readImageInfo(client(), NS, "v1");
    expect(info.digest).toBe(digest);
    expect(info.runnerVersion).toBe("2.330.0");
    expect(info.uncompressedDiskSize).toBeGreaterThan(0);
    expect(Date.parse(info.uploadedAt!)).toBeGreaterThan(Date.now() - 600_000);
  });

  test("wrong password: unauthorized, exit kind config, names the user and what to check, never the password", async () => {
    const err = await failure(client({ credentials: { username: registry.username, password: "wrong-password-123" } }).headManifest(NS, "v1"));
    expect(err.failure).toBe("unauthorized");
    expect(err.exitCode).toBe(exitCode("config"));
    expect(err.message).toContain(`for user ${registry.username} (401)`);
    expect(err.message).toContain("check image.username and image.password_path");
    expect(err.message).not.toContain("wrong-password-123");
  });

  test("no credentials for a registry that wants them", async () => {
    const err = await failure(client({ credentials: undefined }).headManifest(NS, "v1"));
    expect(err.failure).toBe("unauthorized");
    expect(err.message).toContain("wants credentials and none are configured");
  });

  test("a missing tag: not-found (404), exit kind config", async () => {
    const err = await failure(client().getManifest(NS, "no-such-tag"));
    expect(err.failure).toBe("not-found");
    expect(err.exitCode).toBe(exitCode("config"));
    expect(err.message).toBe(`reading the manifest of ${NS}:no-such-tag: not found on ${registry.url} (404 MANIFEST_UNKNOWN)`);
    expect((await failure(client().headManifest(NS, "no-such-tag"))).failure).toBe("not-found");
  });

  test("tags, repositories, delete by digest", async () => {
    const c = client();
    const { digest: d2 } = await publishImage(join(dir, "golden"), `${registry.url}/${NS}:scratch`, {
      insecure: true, username: registry.username, password: registry.password, labels: { x: "scratch" },
    });
    expect((await c.listTags(NS)).sort()).toEqual(["scratch", "v1"]);
    expect(await c.listRepositories()).toEqual([NS]);
    await c.deleteManifest(NS, d2);
    expect(await c.listTags(NS)).toEqual(["v1"]);
    expect((await failure(c.headManifest(NS, "scratch"))).failure).toBe("not-found");
  });
});

describe("a registry that is not answering", () => {
  test("nothing listening: unreachable, exit kind tempfail, says where", async () => {
    const port = await freePort();
    const err = await failure(client({ host: `127.0.0.1:${port}` }).headManifest(NS, "v1"));
    expect(err.failure).toBe("unreachable");
    expect(err.exitCode).toBe(exitCode("tempfail"));
    expect(err.message).toContain(`cannot reach the registry at http://127.0.0.1:${port} while looking up ${NS}:v1`);
  });

  test("accepts but never answers: the call times out", async () => {
    const server: Server = createServer(() => {});
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const { port } = server.address() as { port: number };
      const started = Date.now();
      const err = await failure(client({ host: `127.0.0.1:${port}`, timeoutMs: 300 }).headManifest(NS, "v1"));
      expect(err.failure).toBe("timeout");
      expect(err.exitCode).toBe(exitCode("tempfail"));
      expect(err.message).toContain("within 0.3 s");
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      server.close();
    }
  });

  test("503 from the registry: server, tempfail", async () => {
    const proxy = startProxy(registry.url, () => new Response('{"errors":[{"code":"UNAVAILABLE"}]}', { status: 503 }));
    try {
      const err = await failure(client({ host: proxy.host }).getManifest(NS, "v1"));
      expect(err.failure).toBe("server");
      expect(err.exitCode).toBe(exitCode("tempfail"));
      expect(err.message).toContain("(503 UNAVAILABLE); try again later");
    } finally {
      proxy.stop();
    }
  });
});

describe("token auth (Bearer), as tart answers it", () => {
  /** A token service plus a registry front that wants its token, forwarding to docker-registry with Basic auth. */
  function tokenRegistry() {
    const token = "tok-0123456789abcdef";
    const basic = `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString("base64")}`;
    const proxy = startProxy(registry.url, (req, url, forward) => {
      if (url.pathname === "/token") {
        if (req.headers.get("authorization") !== basic) return new Response("{}", { status: 401 });
        return Response.json({ token, expires_in: 300 });
      }
      if (req.headers.get("authorization") !== `Bearer ${token}`) {
        return new Response('{"errors":[{"code":"UNAUTHORIZED"}]}', {
          status: 401,
          headers: { "Www-Authenticate": `Bearer realm="http://${proxy.host}/token",service="test-registry",scope="repository:${NS}:pull"` },
        });
      }
      req.headers.set("authorization", basic);
      return forward();
    });
    return proxy;
  }

  test("the challenge is answered with a token from the realm, for the service and scope it names", async () => {
    const proxy = tokenRegistry();
    try {
      const c = client({ host: proxy.host });
      expect((await c.headManifest(NS, "v1")).digest).toBe(digest);
      expect((await c.getManifest(NS, "v1")).digest).toBe(digest);
      const tokenCalls = proxy.seen.filter((s) => s.startsWith("GET /token"));
      expect(tokenCalls).toEqual([`GET /token?service=test-registry&scope=repository%3A${NS}%3Apull`]);
    } finally {
      proxy.stop();
    }
  });

  test("the token service refuses the credentials: unauthorized, exit kind config", async () => {
    const proxy = tokenRegistry();
    try {
      const err = await failure(client({ host: proxy.host, credentials: { username: "ci", password: "nope-nope-nope" } }).headManifest(NS, "v1"));
      expect(err.failure).toBe("unauthorized");
      expect(err.exitCode).toBe(exitCode("config"));
      expect(err.message).toContain("refused a token");
    } finally {
      proxy.stop();
    }
  });
});

describe("parseChallenge", () => {
  test("Basic and Bearer with quoted values holding commas", () => {
    expect(parseChallenge('Basic realm="basic-realm"')).toEqual({ scheme: "basic", params: { realm: "basic-realm" } });
    expect(parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"')).toEqual({
      scheme: "bearer",
      params: { realm: "https://auth.example.com/token", service: "registry.example.com", scope: "repository:a/b:pull,push" },
    });
    expect(parseChallenge("Negotiate abc")).toBeUndefined();
    expect(parseChallenge(null)).toBeUndefined();
  });
});
