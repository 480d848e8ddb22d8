// The runner freshness check against a fake actions/runner releases
// endpoint (GET …/releases/latest and …/releases): the clock starts at the
// release that superseded the image's runner; warn from 14 days, fail from 25.
// Then the compiled `pull --runner-check` reading the version from the image's label.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { exitCode } from "../lib/core/errors.ts";
import { checkRunnerFreshness, RunnerCheckError } from "../lib/image/runner-release.ts";
import { startWorld, type World } from "../sim/world.ts";
import { ensureBinaries, start } from "./helpers/e2e.ts";

const DAY = 86_400_000;
const NOW = Date.parse("2026-06-30T12:00:00Z");
const daysAgo = (d: number) => new Date(NOW - d * DAY).toISOString();

/** Newest first, as GitHub lists them; a draft and a prerelease that must be ignored. */
const RELEASES = [
  { tag_name: "v2.332.0", published_at: daysAgo(2), draft: false, prerelease: false },
  { tag_name: "v2.333.0-rc1", published_at: daysAgo(1), draft: false, prerelease: true },
  { tag_name: "v2.331.0", published_at: daysAgo(20), draft: false, prerelease: false },
  { tag_name: "v2.330.0", published_at: daysAgo(40), draft: false, prerelease: false },
  { tag_name: "v2.329.0", published_at: daysAgo(70), draft: false, prerelease: false },
];
let status = 200;
/** What the fake endpoint serves; a test that changes it changes only itself (tests may run in any order). */
let releases = RELEASES;
beforeEach(() => {
  releases = RELEASES;
  status = 200;
});
const calls: string[] = [];
let server: ReturnType<typeof Bun.serve>;
let url: string;

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const u = new URL(req.url);
      calls.push(`${u.pathname}${u.search}`);
      if (status !== 200) return new Response('{"message":"API rate limit exceeded"}', { status });
      if (u.pathname === "/repos/actions/runner/releases/latest") return Response.json(releases.find((r) => !r.prerelease && !r.draft));
      if (u.pathname === "/repos/actions/runner/releases") return Response.json(releases);
      return new Response('{"message":"Not Found"}', { status: 404 });
    },
  });
  url = `http://127.0.0.1:${server.port}/repos/actions/runner/releases`;
});
afterAll(() => server?.stop(true));

const check = (imageVersion: string) => checkRunnerFreshness({ imageVersion, releasesUrl: url, now: NOW });

describe("checkRunnerFreshness", () => {
  test("the latest release is current, with one call", async () => {
    calls.length = 0;
    const r = await check("2.332.0");
    expect(r).toMatchObject({ verdict: "current", daysBehind: 0, latestVersion: "v2.332.0" });
    expect(calls).toEqual(["/repos/actions/runner/releases/latest"]);
  });

  test("superseded 2 days ago: ok (counted from the next release, not the image's own)", async () => {
    expect(await check("2.331.0")).toMatchObject({ verdict: "ok", daysBehind: 2, supersededBy: { version: "v2.332.0" } });
  });

  test("superseded 20 days ago (by 2.331.0, though the latest is 2 days old): warn", async () => {
    const r = await check("v2.330.0");
    expect(r).toMatchObject({ verdict: "warn", daysBehind: 20, supersededBy: { version: "v2.331.0" } });
    expect(r.message).toContain("runner v2.330.0 was superseded by v2.331.0 20 day(s) ago (latest v2.332.0)");
  });

  test("superseded 40 days ago: error", async () => {
    const r = await check("2.329.0");
    expect(r).toMatchObject({ verdict: "error", daysBehind: 40 });
    expect(r.message).toContain("GitHub sends this runner no jobs");
  });

  test("the thresholds are 14 and 25 days", async () => {
    const at = async (days: number) => {
      releases = [{ tag_name: "v3.0.0", published_at: daysAgo(days), draft: false, prerelease: false }];
      return (await check("2.999.0")).verdict;
    };
    expect([await at(13), await at(14), await at(24), await at(25)]).toEqual(["ok", "warn", "warn", "error"]);
  });

  test("rate limited: a tempfail error naming the endpoint; a bad version: bad-input", async () => {
    status = 403;
    try {
      const err = await check("2.300.0").catch((e) => e);
      expect(err).toBeInstanceOf(RunnerCheckError);
      expect(err.exitCode).toBe(exitCode("tempfail"));
      expect(err.message).toContain(`${url}/latest answered 403`);
    } finally {
      status = 200;
    }
    const bad = await check("latest").catch((e) => e);
    expect(bad.exitCode).toBe(exitCode("bad-input"));
  });
});

describe("pull --runner-check", () => {
  let world: World;
  beforeAll(async () => {
    ensureBinaries(["pull"]);
    world = await startWorld({ registry: "required" });
  });
  afterAll(async () => {
    await world?.stop();
  });

  test("reads the image's runner-version label and fails from 25 days behind; --json for monitoring", async () => {
    releases = [
      { tag_name: "v2.331.0", published_at: new Date(Date.now() - 3 * DAY).toISOString(), draft: false, prerelease: false },
      { tag_name: "v2.330.0", published_at: new Date(Date.now() - 30 * DAY).toISOString(), draft: false, prerelease: false },
      { tag_name: "v2.329.0", published_at: new Date(Date.now() - 60 * DAY).toISOString(), draft: false, prerelease: false },
    ];
    const config = (name: string) => world.writeConfig({ image: { runner_releases_url: url }, host: { state_dir: join(world.dir, name) } }, `${name}.yml`);

    await world.publishVersion({ marker: "fresh", runnerVersion: "2.330.0" });
    const fresh = await start(world, "pull", ["--config", config("fresh"), "--runner-check", "--json"]).done;
    expect(fresh.code).toBe(0);
    expect(JSON.parse(fresh.stdout)).toMatchObject({ imageVersion: "2.330.0", verdict: "ok", daysBehind: 3 });

    await world.publishVersion({ marker: "stale", runnerVersion: "2.329.0" });
    const stale = await start(world, "pull", ["--config", config("stale"), "--runner-check"]).done;
    expect(stale.code).toBe(exitCode("failure"));
    expect(stale.lines.find((l) => l.event === "runner.check")).toMatchObject({ level: "error", days_behind: 30, runner_version: "2.329.0" });

    await world.publishVersion({ marker: "unlabelled" });
    const none = await start(world, "pull", ["--config", config("none"), "--runner-check"]).done;
    expect(none.code).toBe(exitCode("bad-input"));
    expect(none.stderr).toContain("has no dev.macos-runner.runner-version label");
  }, 60_000);
});
