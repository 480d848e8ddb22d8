// GitHub App credentials against the simulated GitHub: the installation token
// and id cached on disk across cycles and slots, healed once when GitHub
// refuses them, auth-app's clock-skew retry logged through our logger, and no
// token in any log line.
import { expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { BadInputError, exitCode } from "../../lib/core/errors.ts";
import { GitHubAuthError, GitHubNotFoundError } from "../../lib/github/errors.ts";
import { isPositiveInteger, JsonMapFile, stateFiles, stateKeys, TokenCache } from "../../lib/github/cache.ts";
import { generateJitConfig } from "../../lib/github/runners.ts";
import { redact } from "../../lib/core/redact.ts";
import { calls, type CapturedLog, captureLog, clientFor, fakeClock, type GitHubConfig, githubConfig, orgInstallationId, simForFile, tempDir } from "./harness.ts";

const h = simForFile();

const JIT = "POST /orgs/{org}/actions/runners/generate-jitconfig";
const ACCESS_TOKENS = "POST /app/installations/{installation_id}/access_tokens";
const LOOKUP = "GET /orgs/{org}/installation";

let n = 0;

/** A host: its state directory and app config (no installation_id unless given). */
function host(o: { installationId?: number } = {}) {
  const dir = tempDir();
  return { dir, github: githubConfig(h().sim, { dir, ...o }) };
}

function cycle(github: GitHubConfig, stateDir: string, logs: CapturedLog = captureLog(), clock = fakeClock()) {
  return { gh: clientFor(github, { stateDir, log: logs.log, clock }), logs, clock };
}

const jitFor = (gh: Parameters<typeof generateJitConfig>[0]) =>
  generateJitConfig(gh, { name: `cred-${++n}`, group: "Default", labels: ["self-hosted"], workFolder: "_work" });

const REVOKED = "ghs_revokedRevokedRevokedRevoked0123";

/** The token cached for the sim's installation (auth-app's `token|createdAt|expiresAt|...`). */
function cachedToken(stateDir: string, github: GitHubConfig) {
  return new TokenCache(stateFiles.tokens(stateDir)).get(stateKeys.token(github, orgInstallationId(h().sim)))?.split("|")[0];
}

/** Caches `token` for the sim's installation, good for an hour, as auth-app would have. */
function cacheToken(stateDir: string, github: GitHubConfig, token: string) {
  const value = [token, new Date().toISOString(), new Date(Date.now() + 3_600_000).toISOString(), "all", "organization_self_hosted_runners!", ""].join("|");
  new TokenCache(stateFiles.tokens(stateDir)).set(stateKeys.token(github, orgInstallationId(h().sim)), value);
}

test("cold cache: the installation is looked up and a token fetched once; the next cycle (a new process) reuses both", async () => {
  const { dir, github } = host();
  await jitFor(cycle(github, dir).gh);
  await jitFor(cycle(github, dir).gh);
  expect(calls(await h().control.state())).toEqual({ [LOOKUP]: 1, [ACCESS_TOKENS]: 1, [JIT]: 2 });
  expect(statSync(stateFiles.tokens(dir)).mode & 0o777).toBe(0o600);
  expect(statSync(stateFiles.installations(dir)).mode & 0o777).toBe(0o600);
  const token = cachedToken(dir, github)!;
  expect(redact(`x ${token} y`)).toBe("x [REDACTED] y"); // registered as a secret
});

test("two slots starting together on a cold cache fetch one token between them (file lock)", async () => {
  const { dir, github } = host();
  await Promise.all([jitFor(cycle(github, dir).gh), jitFor(cycle(github, dir).gh)]);
  expect(calls(await h().control.state())).toEqual({ [LOOKUP]: 1, [ACCESS_TOKENS]: 1, [JIT]: 2 });
});

test("a revoked cached token is dropped and a fresh one fetched, once; the call then succeeds", async () => {
  const { dir, github } = host({ installationId: orgInstallationId(h().sim) });
  cacheToken(dir, github, REVOKED);
  const { gh, logs } = cycle(github, dir);
  const jit = await jitFor(gh);
  expect(jit.runner.id).toBeGreaterThan(0);
  expect(calls(await h().control.state())).toEqual({ [ACCESS_TOKENS]: 1, [JIT]: 2 });
  expect(cachedToken(dir, github)).toBeDefined();
  expect(cachedToken(dir, github)).not.toBe(REVOKED);
  expect(logs.lines().find((l) => l.event === "github.token_refused")?.level).toBe("warn");
});

test("a fresh token refused too: a config error (78) saying the cached token was dropped and a fresh one also refused", async () => {
  const { dir, github } = host({ installationId: orgInstallationId(h().sim) });
  cacheToken(dir, github, REVOKED);
  await h().control.fault({ method: "POST", path: "/orgs/{org}/actions/runners/generate-jitconfig", status: 401, count: 2 });
  const err = (await jitFor(cycle(github, dir).gh).catch((e: unknown) => e)) as GitHubAuthError;
  expect(err).toBeInstanceOf(GitHubAuthError);
  expect(err.exitCode).toBe(exitCode("config"));
  expect(err.message).toContain('GitHub said 401 "Bad credentials"');
  expect(err.message).toContain("the cached one had been refused (401) first, so it was dropped and a new one fetched");
  expect(err.message).toContain("Check github.app.id");
  expect(calls(await h().control.state())).toEqual({ [ACCESS_TOKENS]: 1, [JIT]: 2 });
});

test("a token fetched just now and refused: one retry after the replication delay (1 s, on the injected clock), then a config error", async () => {
  const { dir, github } = host({ installationId: orgInstallationId(h().sim) });
  await h().control.fault({ method: "POST", path: "/orgs/{org}/actions/runners/generate-jitconfig", status: 401, count: 2 });
  const { gh, clock } = cycle(github, dir);
  const err = (await jitFor(gh).catch((e: unknown) => e)) as GitHubAuthError;
  expect(err).toBeInstanceOf(GitHubAuthError);
  expect(err.message).toContain("an installation token fetched just now, refused once before and retried after 1000 ms");
  expect(clock.waits).toEqual([1000]);
  expect(calls(await h().control.state())).toEqual({ [ACCESS_TOKENS]: 1, [JIT]: 2 });
});

test("a stale cached installation id (404) is dropped and looked up again, once; the right id is cached", async () => {
  const { dir, github } = host();
  const ids = new JsonMapFile(stateFiles.installations(dir), isPositiveInteger);
  ids.set(stateKeys.installation(github), 41_999_999);
  const { gh, logs } = cycle(github, dir);
  await jitFor(gh);
  expect(calls(await h().control.state())).toEqual({ [ACCESS_TOKENS]: 2, [LOOKUP]: 1, [JIT]: 1 });
  expect(ids.get(stateKeys.installation(github))).toBe(orgInstallationId(h().sim));
  expect(logs.lines().some((l) => l.event === "github.installation_stale")).toBe(true);
});

test("a stale installation id and the app no longer installed: a config error that says what was tried", async () => {
  const { dir, github } = host();
  new JsonMapFile(stateFiles.installations(dir), isPositiveInteger).set(stateKeys.installation(github), 41_999_999);
  await h().control.fault({ method: "GET", path: "/orgs/{org}/installation", status: 404 });
  const err = (await jitFor(cycle(github, dir).gh).catch((e: unknown) => e)) as GitHubNotFoundError;
  expect(err).toBeInstanceOf(GitHubNotFoundError);
  expect(err.exitCode).toBe(exitCode("config"));
  expect(err.message).toContain(`looking up the GitHub App installation for ${github.url} (GET /orgs/acme/installation): GitHub said 404`);
  expect(err.message).toContain("the cached installation id 41999999 had answered 404, so it was dropped");
  expect(err.message).toContain("the GitHub App must be installed there");
});

test("a configured installation id GitHub does not know is not healed: the error names github.app.installation_id", async () => {
  const { dir, github } = host({ installationId: 41_999_999 });
  const err = (await jitFor(cycle(github, dir).gh).catch((e: unknown) => e)) as GitHubNotFoundError;
  expect(err).toBeInstanceOf(GitHubNotFoundError);
  expect(err.message).toContain("fetching an installation token for installation 41999999 (github.app.installation_id)");
  expect(calls(await h().control.state())).toEqual({ [ACCESS_TOKENS]: 1 });
});

test("an installation token answer without expires_at: a bad-input error naming the call and the field; the next cycle fetches again", async () => {
  const { dir, github } = host({ installationId: orgInstallationId(h().sim) });
  await h().control.fault({ method: "POST", path: "/app/installations/{installation_id}/access_tokens", status: 201, body: { token: "ghs_noExpiryNoExpiryNoExpiry0123" } });
  const err = (await jitFor(cycle(github, dir).gh).catch((e: unknown) => e)) as BadInputError;
  expect(err).toBeInstanceOf(BadInputError);
  expect(err.message).toContain(`fetching an installation token for installation ${orgInstallationId(h().sim)}: GitHub's answer does not have the documented shape (expires_at is missing, expected a non-empty string)`);
  expect(cachedToken(dir, github)).toBeUndefined();
  await jitFor(cycle(github, dir).gh);
  expect(calls(await h().control.state())).toEqual({ [ACCESS_TOKENS]: 2, [JIT]: 1 });
});

test("clock skew: auth-app's warnings land in our JSON log (not on the console), and its retry gets the token", async () => {
  const { dir, github } = host({ installationId: orgInstallationId(h().sim) });
  await h().control.setClockOffset(20 * 60_000); // GitHub's clock 20 min ahead: our JWT looks expired to it
  const { gh, logs } = cycle(github, dir);
  await jitFor(gh);
  const warnings = logs.lines().filter((l) => l.event === "github.octokit" && l.level === "warn").map((l) => String(l.msg));
  expect(warnings.some((m) => m.includes("'Expiration time' claim ('exp') must be a numeric value"))).toBe(true);
  expect(warnings.some((m) => /GitHub API time and system time are different by 1[12]\d\d seconds/.test(m))).toBe(true);
  expect(calls(await h().control.state())).toEqual({ [ACCESS_TOKENS]: 2, [JIT]: 1 });
});

test("no token, JWT or key in any log line, through a cold start, a refused token and a retry", async () => {
  const { dir, github } = host();
  const logs = captureLog();
  await jitFor(cycle(github, dir, logs).gh);
  const first = cachedToken(dir, github)!;
  cacheToken(dir, github, REVOKED);
  await h().control.fault({ method: "POST", path: "/orgs/{org}/actions/runners/generate-jitconfig", status: 502 });
  await jitFor(cycle(github, dir, logs).gh);
  const second = cachedToken(dir, github)!;
  const text = logs.text();
  expect(logs.lines().map((l) => l.event)).toEqual(expect.arrayContaining(["github.installation_found", "github.token_fetched", "github.token_refused", "github.retry"]));
  for (const secret of [first, second, REVOKED, h().sim.app.privateKeyPem.split("\n")[1]!]) expect(text).not.toContain(secret);
  expect(text).not.toMatch(/ghs_[A-Za-z0-9]{8}/);
  expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{8}/);
  expect(readFileSync(stateFiles.tokens(dir), "utf8")).toContain(second); // the secret lives only in the 0600 cache
});
