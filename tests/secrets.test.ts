// Every secret file is read through readSecretFile, which registers what it
// read: after each code path that reads one (the config's key check, the
// GitHub client, tart's and the registry's credentials, retention, doctor),
// the file's value is gone from a log line, even in a form no shape rule knows.
import { afterAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { loadConfig, type Config } from "../lib/config/index.ts";
import { registryFor, tartFor } from "../lib/slot/context.ts";
import { githubChecks } from "../lib/host/doctor/github.ts";
import { imageChecks } from "../lib/host/doctor/image.ts";
import type { CheckResult, DoctorContext } from "../lib/host/doctor/types.ts";
import { MacosRunnerError } from "../lib/core/errors.ts";
import { githubFor } from "../lib/github/client.ts";
import { createLogger } from "../lib/core/log.ts";
import { parseImageRef } from "../lib/image/oci-ref.ts";
import { readSecretFile } from "../lib/core/secrets.ts";
import { TartCli } from "../lib/vm/tart.ts";
import { main as retention } from "../registry/retention/main.ts";

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

const b64 = (text: string) => Buffer.from(text).toString("base64");
const distinct = (label: string) => `${label}-${randomBytes(10).toString("hex")}`;
const rsaKey = () => generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
// Nothing listens on port 1: GitHub and the registry are refused at once, after the secret was read.
const NOWHERE = "127.0.0.1:1";

function dir(): string {
  const root = mkdtempSync(join(tmpdir(), "secrets-test-"));
  roots.push(root);
  return root;
}

function secret(path: string, value: string): string {
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return path;
}

/** A host whose config names a PAT or an App key, and a registry user, each in a file of its own. */
function host(auth: "pat" | "app") {
  const root = dir();
  const files = { pat: join(root, "pat"), key: join(root, "app.pem"), password: join(root, "registry-password") };
  const values = { pat: distinct("pat"), key: rsaKey(), password: distinct("registry-pw") };
  secret(files.pat, values.pat);
  secret(files.key, values.key);
  secret(files.password, values.password);
  secret(join(root, "ssh-key"), "not read by us");
  writeFileSync(join(root, "known_hosts"), "");
  const github = auth === "pat" ? "  token_path: pat" : "  app:\n    id: 1\n    installation_id: 2\n    private_key_path: app.pem";
  const yaml = `github:\n  url: https://github.com/acme\n  api_url: http://${NOWHERE}\n${github}
image:\n  ref: ${NOWHERE}/macos-runner:v1\n  insecure: true\n  username: ci\n  password_path: registry-password
vm:\n  ssh:\n    private_key_path: ssh-key\n    known_hosts_path: known_hosts\nhost:\n  state_dir: state\n`;
  const path = join(root, "config.yml");
  writeFileSync(path, yaml);
  return { root, files, values, configPath: path, load: () => loadConfig({ path, env: { HOME: root } }) };
}

/** What a JSON line and a text line show of `value` and its base64, which only registration redacts. */
function logged(value: string): string {
  let out = "";
  const stream = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  });
  for (const format of ["json", "text"] as const) {
    createLogger({ stream, format }).info("secret.echo", `raw ${value}`, { encoded: b64(value) });
  }
  return out;
}

function expectRedacted(value: string) {
  const text = logged(value);
  expect(text).not.toContain(value);
  expect(text).not.toContain(b64(value));
  expect(text.match(/\[REDACTED\]/g)?.length).toBeGreaterThanOrEqual(2);
}

/** Guards each test: the value is not registered before the code path under test reads its file. */
function expectNotYetRedacted(value: string) {
  expect(logged(value)).toContain(b64(value));
}

function doctorContext(config: Config, configPath: string): DoctorContext {
  return {
    config,
    configPath,
    tart: new TartCli({ path: "tart" }),
    platform: process.platform,
    uid: process.getuid?.() ?? 0,
    env: { HOME: tmpdir() },
    run: async (argv) => {
      throw new Error(`no command runs in this test (${argv.join(" ")})`);
    },
    host: "mini-07",
    timeoutMs: 5_000,
  };
}

const check = (results: CheckResult[], name: string) => results.find((r) => r.check === name);

describe("readSecretFile", () => {
  test("returns the trimmed content and registers it with its encoded forms", () => {
    const value = distinct("secret");
    const path = secret(join(dir(), "s"), `  ${value}\n\n`);
    expectNotYetRedacted(value);
    expect(readSecretFile(path, "image.password_path")).toBe(value);
    expectRedacted(value);
  });

  test("a missing file, an empty one and a directory are config errors naming the file and its key", () => {
    const root = dir();
    const cases = [
      { path: join(root, "gone"), message: `cannot read ${join(root, "gone")} (github.token_path): it does not exist; check the path in github.token_path and put the secret in it (mode 0600)` },
      { path: secret(join(root, "empty"), "  "), message: `${join(root, "empty")} (github.token_path) is empty; put the secret in it (mode 0600)` },
      { path: root, message: `cannot read ${root} (github.token_path): it is a directory; check the path in github.token_path and put the secret in it (mode 0600)` },
    ];
    for (const c of cases) {
      let caught: unknown;
      try {
        readSecretFile(c.path, "github.token_path");
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(MacosRunnerError);
      expect((caught as MacosRunnerError).kind).toBe("config");
      expect((caught as MacosRunnerError).exitCode).toBe(78);
      expect((caught as Error).message).toBe(c.message);
    }
  });
});

describe("every secret file is read through it", () => {
  test("github.token_path: building the GitHub client", () => {
    const h = host("pat");
    const config = h.load();
    expectNotYetRedacted(h.values.pat);
    githubFor(config, createLogger({ stream: new Writable({ write: (_c, _e, done) => done() }) }));
    expectRedacted(h.values.pat);
  });

  test("github.app.private_key_path: loading the config, then building the GitHub client", () => {
    const h = host("app");
    expectNotYetRedacted(h.values.key);
    const config = h.load();
    expectRedacted(h.values.key);
    // A key rotated after the config loaded is registered when the client reads it.
    const rotated = rsaKey();
    secret(h.files.key, rotated);
    expectNotYetRedacted(rotated);
    githubFor(config, createLogger({ stream: new Writable({ write: (_c, _e, done) => done() }) }));
    expectRedacted(rotated);
  });

  test("image.password_path: tart's credentials (tartFor) and the registry client's (registryFor)", () => {
    const h = host("pat");
    const config = h.load();
    expectNotYetRedacted(h.values.password);
    const tart = tartFor(config);
    expectRedacted(h.values.password);
    expect(tart).toBeInstanceOf(TartCli);
    const changed = distinct("registry-pw-2");
    secret(h.files.password, changed);
    expectNotYetRedacted(changed);
    registryFor(config, parseImageRef(config.image.ref)!);
    expectRedacted(changed);
  });

  test("retention --password-file", async () => {
    const password = distinct("admin-pw");
    const path = secret(join(dir(), "admin-password"), password);
    expectNotYetRedacted(password);
    const run = retention({ values: { registry: NOWHERE, keep: "2", username: "admin", "password-file": path, insecure: true }, common: { verbose: false }, positionals: [] });
    await expect(run).rejects.toThrow(/127\.0\.0\.1:1/); // nothing listens there; the password was read first
    expectRedacted(password);
  });

  test("doctor: the PAT (github checks) and the registry password (registry check)", async () => {
    const h = host("pat");
    const config = h.load();
    const ctx = doctorContext(config, h.configPath);
    expectNotYetRedacted(h.values.pat);
    expect(check(await githubChecks(ctx), "github-key")?.status).toBe("PASS");
    expectRedacted(h.values.pat);
    expectNotYetRedacted(h.values.password);
    expect(check(await imageChecks(ctx), "registry")?.found).toContain("unreachable");
    expectRedacted(h.values.password);
  });

  test("doctor: the app key (github checks)", async () => {
    const h = host("app");
    const config = h.load();
    const rotated = rsaKey();
    secret(h.files.key, rotated);
    expectNotYetRedacted(rotated);
    expect(check(await githubChecks(doctorContext(config, h.configPath)), "github-key")?.status).toBe("PASS");
    expectRedacted(rotated);
  });

  test("doctor: a secret file gone after the config loaded fails its check, naming the file and key", async () => {
    const h = host("pat");
    const config = h.load();
    unlinkSync(h.files.pat);
    unlinkSync(h.files.password);
    const ctx = doctorContext(config, h.configPath);
    const github = await githubChecks(ctx);
    expect(check(github, "github-key")).toMatchObject({ status: "FAIL", found: expect.stringContaining(`cannot read ${h.files.pat} (github.token_path): it does not exist`) });
    expect(check(github, "github-jwt")?.status).toBe("SKIP");
    const image = await imageChecks(ctx);
    expect(check(image, "registry")).toMatchObject({ status: "FAIL", found: expect.stringContaining(`cannot read ${h.files.password} (image.password_path): it does not exist`) });
    expect(check(image, "image-tag")).toMatchObject({ status: "SKIP", found: "no registry password" });
    expect(check(image, "image-local")?.status).not.toBe("SKIP");
  });
});
