// lib/github/errors.ts against the simulated GitHub's faults: what is retried,
// how long it waits (asserted on an injected clock, never slept), and when it
// gives up with an error that says so.
import { expect, test } from "bun:test";
import { createServer } from "node:net";
import { exitCode } from "../../lib/core/errors.ts";
import { GitHubRateLimitError, GitHubUnavailableError, type RetryInfo } from "../../lib/github/errors.ts";
import { createRegistrationToken, listRunners } from "../../lib/github/runners.ts";
import { calls, captureLog, clientFor, fakeClock, githubConfig, simForFile, tempDir } from "./harness.ts";

const h = simForFile();

const RUNNERS = "/orgs/{org}/actions/runners";

/** A PAT client (no token minting in the way) with an injected clock; records every retry. */
function setup(opts: { timeoutMs?: number; clock?: ReturnType<typeof fakeClock> } = {}) {
  const dir = tempDir();
  const clock = opts.clock ?? fakeClock();
  const retries: RetryInfo[] = [];
  const logs = captureLog();
  const gh = clientFor(githubConfig(h().sim, { dir, auth: "pat" }), { stateDir: dir, log: logs.log, clock, timeoutMs: opts.timeoutMs });
  return { gh, clock, retries, logs, onRetry: { onRetry: (i: RetryInfo) => retries.push(i) } };
}

test("5xx answers are retried with exponential backoff (±25 % jitter), then the call succeeds", async () => {
  const { gh, clock, retries, onRetry } = setup();
  await h().control.fault({ method: "GET", path: RUNNERS, status: 502, count: 2 });
  expect(await listRunners(gh, { namePrefix: "x-" }, onRetry)).toEqual([]);
  expect(retries.map((r) => [r.status, r.reason])).toEqual([[502, "server error 502"], [502, "server error 502"]]);
  expect(clock.waits).toHaveLength(2);
  expect(clock.waits[0]).toBeGreaterThanOrEqual(375);
  expect(clock.waits[0]).toBeLessThanOrEqual(625);
  expect(clock.waits[1]).toBeGreaterThanOrEqual(750);
  expect(clock.waits[1]).toBeLessThanOrEqual(1250);
  expect(calls(await h().control.state())[`GET ${RUNNERS}`]).toBe(3);
});

test("5xx that outlasts the attempts: a tempfail error naming the call, the request and the status", async () => {
  const { gh } = setup();
  await h().control.fault({ method: "GET", path: RUNNERS, status: 503, count: 10 });
  const err = await listRunners(gh, { namePrefix: "x-" }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(GitHubUnavailableError);
  expect((err as GitHubUnavailableError).exitCode).toBe(exitCode("tempfail"));
  expect((err as Error).message).toContain(`listing runners of ${h().sim.url}/acme (GET /orgs/acme/actions/runners): GitHub said 503`);
  expect(calls(await h().control.state())[`GET ${RUNNERS}`]).toBe(4);
});

test("a secondary rate limit waits what retry-after says, then succeeds", async () => {
  const { gh, clock, retries, onRetry } = setup();
  await h().control.fault({ method: "GET", path: RUNNERS, rateLimited: "secondary", retryAfter: 30 });
  await listRunners(gh, { namePrefix: "x-" }, onRetry);
  expect(clock.waits).toEqual([30_000]);
  expect(retries.map((r) => [r.status, r.reason])).toEqual([[403, "rate limited (secondary)"]]);
});

test("a rate-limit wait beyond the cap is not taken: GitHubRateLimitError says when to retry, after one call", async () => {
  const { gh, clock } = setup();
  await h().control.fault({ method: "GET", path: RUNNERS, rateLimited: "secondary", retryAfter: 600 });
  const err = (await listRunners(gh, { namePrefix: "x-" }).catch((e: unknown) => e)) as GitHubRateLimitError;
  expect(err).toBeInstanceOf(GitHubRateLimitError);
  expect(err.exitCode).toBe(exitCode("tempfail"));
  expect(err.retryAtMs).toBe(clock.now() + 600_000);
  expect(err.message).toContain("retry in 600 s");
  expect(clock.waits).toEqual([]);
  expect(calls(await h().control.state())[`GET ${RUNNERS}`]).toBe(1);
});

test("a primary rate limit waits until x-ratelimit-reset when that is near, and gives up with retryAt when it is an hour away", async () => {
  // The sim's primary window resets an hour after it started: a clock 20 s before that waits about 20 s.
  const near = setup({ clock: fakeClock(Date.now() + 3_600_000 - 20_000) });
  await h().control.fault({ method: "GET", path: RUNNERS, rateLimited: "primary" });
  await listRunners(near.gh, { namePrefix: "x-" }, near.onRetry);
  expect(near.retries.map((r) => r.reason)).toEqual(["rate limited (primary)"]);
  expect(near.clock.waits[0]).toBeGreaterThan(0);
  expect(near.clock.waits[0]).toBeLessThanOrEqual(21_000);

  const far = setup();
  await h().control.fault({ method: "GET", path: RUNNERS, rateLimited: "primary" });
  const err = (await listRunners(far.gh, { namePrefix: "x-" }).catch((e: unknown) => e)) as GitHubRateLimitError;
  expect(err).toBeInstanceOf(GitHubRateLimitError);
  expect(err.message).toContain("primary rate limit");
  expect(err.retryAtMs).toBeGreaterThan(Date.now() + 3_500_000);
  expect(err.retryAtMs % 1000).toBe(0); // x-ratelimit-reset is in whole epoch seconds
  expect(far.clock.waits).toEqual([]);
});

test("a lost answer (connection closed) is a network error by its cause: retried, reported with status 0", async () => {
  // A POST: Bun's fetch itself resends a GET whose keep-alive connection was closed.
  const { gh, retries, onRetry } = setup();
  await h().control.fault({ method: "POST", path: `${RUNNERS}/registration-token`, drop: true });
  const { token } = await createRegistrationToken(gh, onRetry);
  expect(token).toBeString();
  expect(retries).toHaveLength(1);
  expect(retries[0]!.status).toBe(0);
  expect(retries[0]!.reason).toContain("ECONNRESET");
  expect(calls(await h().control.state())[`POST ${RUNNERS}/registration-token`]).toBe(2);
});

test("a call slower than the timeout is a network error: retried, then it succeeds", async () => {
  const { gh, retries, onRetry } = setup({ timeoutMs: 300 });
  await h().control.fault({ method: "GET", path: RUNNERS, latencyMs: 2000 });
  await listRunners(gh, { namePrefix: "x-" }, onRetry);
  expect(retries.map((r) => r.status)).toEqual([0]);
  expect(retries[0]!.reason).toContain("TimeoutError");
});

test("nobody listening: retried, then a tempfail error that says no answer came (not 'GitHub said 500')", async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  const dir = tempDir();
  const clock = fakeClock();
  const logs = captureLog();
  const gh = clientFor({ ...githubConfig(h().sim, { dir, auth: "pat" }), apiUrl: `http://127.0.0.1:${port}` }, { stateDir: dir, log: logs.log, clock });
  const err = (await listRunners(gh, { namePrefix: "x-" }).catch((e: unknown) => e)) as GitHubUnavailableError;
  expect(err).toBeInstanceOf(GitHubUnavailableError);
  expect(err.exitCode).toBe(exitCode("tempfail"));
  expect(err.message).toContain("got no answer (");
  expect(err.message).not.toContain("GitHub said 500");
  expect(clock.waits).toHaveLength(3);
  // The client's own retry events went to the log.
  expect(logs.lines().filter((l) => l.event === "github.retry")).toHaveLength(3);
});
