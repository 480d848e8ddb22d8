// Contract tests of sim/github, driven by the real octokit clients; every
// response the fakes send is validated against GitHub's OpenAPI description.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createSign, generateKeyPairSync } from "node:crypto";
import { createAppAuth } from "@octokit/auth-app";
import { request as octokitRequest } from "@octokit/request";
import { startGitHub, type GitHubSim } from "../../sim/github/server.ts";
import { GitHubSimClient } from "../../sim/github/client.ts";
import { loadResponseValidator, type ResponseValidator } from "../../sim/github/openapi.ts";
import type { GitHubSimOptions } from "../../sim/github/types.ts";

type Request = typeof octokitRequest;
interface HttpError {
  status: number;
  message: string;
  response: { headers: Record<string, string>; data: { message: string; documentation_url: string; status: string } };
}

let validator: ResponseValidator;
const sims: GitHubSim[] = [];
let sim: GitHubSim;
let control: GitHubSimClient;

async function start(opts: GitHubSimOptions = {}): Promise<GitHubSim> {
  const s = await startGitHub({ validate: validator, ...opts });
  sims.push(s);
  return s;
}

const fail = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (e: unknown) => e as HttpError,
  );

function apiFor(s: GitHubSim, token: string): Request {
  return octokitRequest.defaults({ baseUrl: s.url, headers: { authorization: `token ${token}` } });
}

async function installationToken(s: GitHubSim, account = "acme"): Promise<string> {
  const request = octokitRequest.defaults({ baseUrl: s.url });
  const auth = createAppAuth({ appId: s.app.id, privateKey: s.app.privateKeyPem, request });
  const installation = s.app.installations.find((i) => i.account === account)!;
  const { token } = await auth({ type: "installation", installationId: installation.id });
  return token;
}

function signJwt(payload: Record<string, unknown>, pem: string, header: Record<string, unknown> = { alg: "RS256", typ: "JWT" }): string {
  const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const data = `${enc(header)}.${enc(payload)}`;
  return `${data}.${createSign("RSA-SHA256").update(data).sign(pem, "base64url")}`;
}

const jit = (api: Request, scope: string, name: string, extra: Record<string, unknown> = {}) =>
  api(`POST /${scope}/actions/runners/generate-jitconfig`, { name, runner_group_id: 1, labels: ["self-hosted", "macOS", "ARM64", "xcode-16"], ...extra } as never);

beforeAll(async () => {
  validator = loadResponseValidator();
  sim = await start({
    orgs: ["acme", "weak"],
    repos: ["acme/app", "weak/lib", "octocat/hello"],
    installations: [{ account: "acme" }, { account: "weak", permissions: { metadata: "read" } }, { account: "octocat" }],
    runnerGroups: ["macs"],
  });
  control = new GitHubSimClient(sim.url);
});

afterAll(async () => {
  const violations = sims.flatMap((s) => s.state().violations);
  await Promise.all(sims.map((s) => s.stop()));
  expect(violations).toEqual([]);
});

describe("GitHub App auth", () => {
  test("auth-app finds installations by org, repo and user and mints an installation token", async () => {
    const request = octokitRequest.defaults({ baseUrl: sim.url });
    const auth = createAppAuth({ appId: sim.app.id, privateKey: sim.app.privateKeyPem, request });
    const { token: jwt } = await auth({ type: "app" });
    const headers = { authorization: `bearer ${jwt}` };
    const org = await request("GET /orgs/{org}/installation", { org: "acme", headers });
    const repo = await request("GET /repos/{owner}/{repo}/installation", { owner: "acme", repo: "app", headers });
    const user = await request("GET /users/{username}/installation", { username: "octocat", headers });
    expect(org.data.id).toBe(repo.data.id);
    expect(org.data.account).toMatchObject({ login: "acme", type: "Organization" });
    expect(user.data.account).toMatchObject({ login: "octocat", type: "User" });
    expect((await fail(request("GET /orgs/{org}/installation", { org: "nobody", headers }))).status).toBe(404);

    const before = Date.now();
    const inst = await auth({ type: "installation", installationId: org.data.id });
    expect(inst.token).toMatch(/^ghs_[A-Za-z0-9]{36}$/);
    const expires = Date.parse(inst.expiresAt);
    expect(expires - before).toBeGreaterThan(3_595_000);
    expect(expires - before).toBeLessThan(3_605_000);
    const list = await apiFor(sim, inst.token)("GET /orgs/{org}/actions/runners", { org: "acme" });
    expect(list.status).toBe(200);
  });

  test("app JWT via client id works; each JWT defect gets GitHub's 401 message", async () => {
    const request = octokitRequest.defaults({ baseUrl: sim.url });
    const now = Math.floor(Date.now() / 1000);
    const good = { iat: now - 30, exp: now + 570, iss: sim.app.id };
    const call = (jwt: string) => request("GET /orgs/{org}/installation", { org: "acme", headers: { authorization: `bearer ${jwt}` } });
    expect((await call(signJwt({ ...good, iss: sim.app.clientId }, sim.app.privateKeyPem))).status).toBe(200);
    expect((await call(signJwt({ ...good, iss: String(sim.app.id) }, sim.app.privateKeyPem))).status).toBe(200);

    const otherKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    const cases: [string, string][] = [
      [signJwt({ ...good, exp: now - 5 }, sim.app.privateKeyPem), "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"],
      [signJwt({ ...good, exp: "soon" }, sim.app.privateKeyPem), "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"],
      [signJwt({ ...good, exp: now + 900 }, sim.app.privateKeyPem), "'Expiration time' claim ('exp') is too far in the future"],
      [signJwt({ ...good, iat: now + 600 }, sim.app.privateKeyPem), "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"],
      [signJwt({ ...good, iat: now - 0.5 }, sim.app.privateKeyPem), "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"],
      [signJwt(good, otherKey), "A JSON web token could not be decoded"],
      [signJwt(good, sim.app.privateKeyPem, { alg: "HS256" }), "A JSON web token could not be decoded"],
      ["not-a-jwt", "A JSON web token could not be decoded"],
      [signJwt({ ...good, iss: "someone" }, sim.app.privateKeyPem), "'Issuer' claim ('iss') must be an Integer"],
      [signJwt({ ...good, iss: 999 }, sim.app.privateKeyPem), "Integration not found"],
    ];
    for (const [jwt, message] of cases) {
      const err = await fail(call(jwt));
      expect(err.status).toBe(401);
      expect(err.response.data).toEqual({ message, documentation_url: "https://docs.github.com/rest", status: "401" });
    }
  });

  test("a skewed sim clock is absorbed by auth-app's Date-header retry (auth.hook)", async () => {
    const skewed = await start();
    const client = new GitHubSimClient(skewed.url);
    const request = octokitRequest.defaults({ baseUrl: skewed.url });
    const auth = createAppAuth({ appId: skewed.app.id, privateKey: skewed.app.privateKeyPem, request });
    const withAuth = request.defaults({ request: { hook: auth.hook } });
    for (const offset of [2 * 3_600_000, -2 * 3_600_000]) {
      await client.resetRequests();
      await client.setClockOffset(offset);
      const installation = await withAuth("GET /orgs/{org}/installation", { org: "acme" });
      const token = await withAuth("POST /app/installations/{installation_id}/access_tokens", { installation_id: installation.data.id });
      expect(token.data.token).toMatch(/^ghs_/);
      const { byEndpoint } = (await client.state()).requests;
      expect(byEndpoint["GET /orgs/{org}/installation"]).toBe(2);
      expect(byEndpoint["POST /app/installations/{installation_id}/access_tokens"]).toBe(2);
      const date = Date.parse((await fetch(`${skewed.url}/orgs/acme/installation`)).headers.get("date")!);
      expect(Math.abs(date - (Date.now() + offset))).toBeLessThan(2_000);
    }
  });

  test("installation tokens expire one hour ahead of the sim clock: then 401 Bad credentials", async () => {
    const s = await start();
    const token = await installationToken(s);
    const api = apiFor(s, token);
    const client = new GitHubSimClient(s.url);
    await client.setClockOffset(59 * 60_000);
    expect((await api("GET /orgs/{org}/actions/runners", { org: "acme" })).status).toBe(200);
    await client.setClockOffset(61 * 60_000);
    const err = await fail(api("GET /orgs/{org}/actions/runners", { org: "acme" }));
    expect(err.status).toBe(401);
    expect(err.response.data.message).toBe("Bad credentials");
  });

  test("revoked installation tokens answer 401 Bad credentials; only the named account's; new ones work", async () => {
    const s = await start({ orgs: ["acme", "other"] });
    const client = new GitHubSimClient(s.url);
    const acme = apiFor(s, await installationToken(s));
    const other = apiFor(s, await installationToken(s, "other"));
    expect(await client.revokeTokens("acme")).toBe(1);
    const err = await fail(acme("GET /orgs/{org}/actions/runners", { org: "acme" }));
    expect(err.status).toBe(401);
    expect(err.response.data.message).toBe("Bad credentials");
    expect((await other("GET /orgs/{org}/actions/runners", { org: "other" })).status).toBe(200);
    expect((await apiFor(s, await installationToken(s))("GET /orgs/{org}/actions/runners", { org: "acme" })).status).toBe(200);
    expect(await client.revokeTokens()).toBe(2);
    expect((await fail(other("GET /orgs/{org}/actions/runners", { org: "other" }))).status).toBe(401);
  });

  test("requesting permissions beyond the installation's is 422; missing auth is 401", async () => {
    const request = octokitRequest.defaults({ baseUrl: sim.url });
    const auth = createAppAuth({ appId: sim.app.id, privateKey: sim.app.privateKeyPem, request });
    const weak = sim.app.installations.find((i) => i.account === "weak")!;
    const err = await fail(auth({ type: "installation", installationId: weak.id, permissions: { administration: "write" }, refresh: true }));
    expect(err.status).toBe(422);
    expect((await fail(request("POST /app/installations/{installation_id}/access_tokens", { installation_id: 1 }))).status).toBe(401);
    const anon = await fail(request("GET /orgs/{org}/actions/runners", { org: "acme" }));
    expect(anon.status).toBe(401);
    expect(anon.response.data.message).toBe("Requires authentication");
    const bogus = await fail(apiFor(sim, "ghs_" + "x".repeat(36))("GET /orgs/{org}/actions/runners", { org: "acme" }));
    expect(bogus.response.data.message).toBe("Bad credentials");
  });
});

describe("runner endpoints", () => {
  test("registration and remove tokens at org, repo and enterprise scope", async () => {
    const api = apiFor(sim, sim.pat);
    for (const scope of ["orgs/acme", "repos/acme/app", "enterprises/acme-ent"]) {
      for (const kind of ["registration-token", "remove-token"]) {
        const res = await api(`POST /${scope}/actions/runners/${kind}`);
        expect(res.status).toBe(201);
        const { token, expires_at } = res.data as { token: string; expires_at: string };
        expect(token).toMatch(/^[A-Z2-7]{29}$/);
        expect(Math.abs(Date.parse(expires_at) - Date.now() - 3_600_000)).toBeLessThan(5_000);
      }
    }
  });

  test("generate-jitconfig: offline ephemeral runner, read-only vs custom labels, decodable config", async () => {
    const api = apiFor(sim, await installationToken(sim));
    for (const scope of ["orgs/acme", "repos/acme/app"]) {
      const res = await jit(api, scope, `jit-${scope.replace(/\W/g, "-")}`);
      expect(res.status).toBe(201);
      const { runner, encoded_jit_config } = res.data as { runner: Record<string, unknown>; encoded_jit_config: string };
      expect(runner).toMatchObject({ os: "unknown", status: "offline", busy: false, ephemeral: true, runner_group_id: 1 });
      expect((runner.labels as { name: string; type: string }[]).map((l) => `${l.name}:${l.type}`)).toEqual([
        "self-hosted:read-only",
        "macOS:read-only",
        "ARM64:read-only",
        "xcode-16:custom",
      ]);
      const files = JSON.parse(Buffer.from(encoded_jit_config, "base64").toString()) as Record<string, string>;
      expect(Object.keys(files).sort()).toEqual([".credentials", ".credentials_rsaparams", ".runner"]);
      const dotRunner = JSON.parse(Buffer.from(files[".runner"]!, "base64").toString());
      expect(dotRunner).toMatchObject({ agentId: runner.id, agentName: runner.name, poolId: 1, poolName: "Default", serverUrl: sim.url, workFolder: "_work", ephemeral: true, disableUpdate: false });
      expect(dotRunner.gitHubUrl).toBe(`${sim.url}/${scope.replace(/^(orgs|repos)\//, "")}`);
      const creds = JSON.parse(Buffer.from(files[".credentials"]!, "base64").toString());
      expect(creds.scheme).toBe("OAuth");
      expect(typeof creds.data.token).toBe("string");
    }
  });

  test("generate-jitconfig errors: duplicate name 409, unknown group 404, bad body 422", async () => {
    const api = apiFor(sim, sim.pat);
    await jit(api, "orgs/acme", "dup");
    const dup = await fail(jit(api, "orgs/acme", "DUP"));
    expect(dup.status).toBe(409);
    expect(dup.response.data.message).toBe("Already exists - A runner with the name DUP already exists.");
    expect((await fail(jit(api, "orgs/acme", "g", { runner_group_id: 42 }))).status).toBe(404);
    const macs = await jit(api, "orgs/acme", "in-macs", { runner_group_id: 2 });
    expect((macs.data as { runner: { runner_group_id: number } }).runner.runner_group_id).toBe(2);
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ runner_group_id: "one" }, /runner_group_id/],
      [{ labels: [] }, /labels/],
      [{ labels: Array.from({ length: 101 }, (_, i) => `l${i}`) }, /labels/],
      [{ name: "" }, /name/],
    ];
    for (const [extra, pattern] of bad) {
      const err = await fail(jit(api, "orgs/acme", "bad", extra));
      expect(err.status).toBe(422);
      expect(err.response.data.message).toMatch(pattern);
    }
    const missing = await fail(api("POST /orgs/{org}/actions/runners/generate-jitconfig", { org: "acme", name: "x", labels: ["a"] } as never));
    expect(missing.response.data.message).toMatch(/"runner_group_id" wasn't supplied/);
  });

  test("a full runner group answers 422 with GitHub's message", async () => {
    const s = await start({ groupCapacity: 2 });
    const api = apiFor(s, s.pat);
    await jit(api, "orgs/acme", "a");
    await jit(api, "orgs/acme", "b");
    const err = await fail(jit(api, "orgs/acme", "c"));
    expect(err.status).toBe(422);
    expect(err.response.data).toMatchObject({ message: "Invalid Argument - Runner group 1 has reached max limit of 2 runners.", status: "422" });
  });

  test("an installation without the runner permission gets 403; enterprise needs a PAT", async () => {
    const weak = apiFor(sim, await installationToken(sim, "weak"));
    for (const call of [jit(weak, "orgs/weak", "w"), jit(weak, "repos/weak/lib", "w"), weak("GET /orgs/{org}/actions/runners", { org: "weak" })]) {
      const err = await fail(call);
      expect(err.status).toBe(403);
      expect(err.response.data.message).toBe("Resource not accessible by integration");
    }
    const acme = apiFor(sim, await installationToken(sim));
    expect((await fail(jit(acme, "orgs/weak", "x"))).status).toBe(403);
    expect((await fail(jit(acme, "enterprises/acme-ent", "x"))).response.data.message).toBe("Resource not accessible by integration");
    const ent = await jit(apiFor(sim, sim.pat), "enterprises/acme-ent", "ent-1");
    expect(ent.status).toBe(201);
    expect((await fail(jit(acme, "orgs/nosuchorg", "x"))).status).toBe(404);
  });

  test("list runners paginates with a Link header and filters by exact name", async () => {
    const s = await start();
    const api = apiFor(s, s.pat);
    for (let i = 1; i <= 5; i++) await jit(api, "repos/acme/app", `r-${i}`);
    const first = await api("GET /repos/{owner}/{repo}/actions/runners", { owner: "acme", repo: "app", per_page: 2 });
    expect(first.data.total_count).toBe(5);
    expect(first.data.runners.map((r) => r.name)).toEqual(["r-1", "r-2"]);
    expect(first.headers.link).toBe(
      `<${s.url}/repos/acme/app/actions/runners?per_page=2&page=2>; rel="next", <${s.url}/repos/acme/app/actions/runners?per_page=2&page=3>; rel="last"`,
    );
    const last = await api("GET /repos/{owner}/{repo}/actions/runners", { owner: "acme", repo: "app", per_page: 2, page: 3 });
    expect(last.data.runners.map((r) => r.name)).toEqual(["r-5"]);
    expect(last.headers.link).toContain('rel="prev"');
    expect(last.headers.link).not.toContain('rel="next"');
    const named = await api("GET /repos/{owner}/{repo}/actions/runners", { owner: "acme", repo: "app", name: "r-3" });
    expect(named.data.runners.map((r) => r.name)).toEqual(["r-3"]);
    const none = await api("GET /repos/{owner}/{repo}/actions/runners", { owner: "acme", repo: "app", name: "r-" });
    expect(none.data.total_count).toBe(0);
    const ent = await api("GET /enterprises/{enterprise}/actions/runners", { enterprise: "acme-ent" });
    expect(ent.data.total_count).toBe(0);
  });

  test("get and delete runner; unknown id 404; busy runner 422 until its job ends", async () => {
    const s = await start();
    const api = apiFor(s, s.pat);
    const created = (await jit(api, "orgs/acme", "busy-one")).data as { runner: { id: number }; encoded_jit_config: string };
    const id = created.runner.id;
    const got = await api("GET /orgs/{org}/actions/runners/{runner_id}", { org: "acme", runner_id: id });
    expect(got.data.name).toBe("busy-one");
    const labels = await api("GET /orgs/{org}/actions/runners/{runner_id}/labels", { org: "acme", runner_id: id });
    expect(labels.data.total_count).toBe(4);
    expect((await fail(api("GET /orgs/{org}/actions/runners/{runner_id}", { org: "acme", runner_id: 999 }))).status).toBe(404);
    expect((await fail(api("GET /repos/{owner}/{repo}/actions/runners/{runner_id}", { owner: "acme", repo: "app", runner_id: id }))).status).toBe(404);

    const broker = await brokerFor(s, created.encoded_jit_config);
    await new GitHubSimClient(s.url).enqueueJob({ name: "long", script: "sleep 1" });
    const session = await broker.open();
    expect((await broker.poll(session)).status).toBe(200);
    const busy = await fail(api("DELETE /orgs/{org}/actions/runners/{runner_id}", { org: "acme", runner_id: id }));
    expect(busy.status).toBe(422);
    expect(busy.response.data.message).toBe('Bad request - Runner "busy-one" is still running a job');
    expect((await api("GET /orgs/{org}/actions/runners/{runner_id}", { org: "acme", runner_id: id })).data).toMatchObject({ status: "online", busy: true });

    const idle = (await jit(api, "orgs/acme", "idle-one")).data as { runner: { id: number } };
    expect((await api("DELETE /orgs/{org}/actions/runners/{runner_id}", { org: "acme", runner_id: idle.runner.id })).status).toBe(204);
    expect((await fail(api("DELETE /orgs/{org}/actions/runners/{runner_id}", { org: "acme", runner_id: idle.runner.id }))).status).toBe(404);
  });

  test("runner groups at org and enterprise scope", async () => {
    const api = apiFor(sim, sim.pat);
    const org = await api("GET /orgs/{org}/actions/runner-groups", { org: "acme" });
    expect(org.data.runner_groups.map((g) => [g.id, g.name, g.default])).toEqual([
      [1, "Default", true],
      [2, "macs", false],
    ]);
    const ent = await api("GET /enterprises/{enterprise}/actions/runner-groups" as "GET /orgs/{org}/actions/runner-groups", { enterprise: "acme-ent" } as never);
    expect(ent.data.total_count).toBe(2);
  });

  test("every API response carries Date and x-ratelimit-*; a spent budget is 403 with remaining 0", async () => {
    const s = await start({ rateLimit: 3 });
    const api = apiFor(s, s.pat);
    const first = await api("GET /orgs/{org}/actions/runners", { org: "acme" });
    expect(first.headers.date).toBeDefined();
    expect(first.headers["x-ratelimit-limit"]).toBe("3");
    expect(first.headers["x-ratelimit-remaining"]).toBe("2");
    expect(first.headers["x-ratelimit-used"]).toBe("1");
    expect(first.headers["x-ratelimit-resource"]).toBe("core");
    expect(Number(first.headers["x-ratelimit-reset"])).toBeGreaterThan(Date.now() / 1000);
    await api("GET /orgs/{org}/actions/runners", { org: "acme" });
    await api("GET /orgs/{org}/actions/runners", { org: "acme" });
    const err = await fail(api("GET /orgs/{org}/actions/runners", { org: "acme" }));
    expect(err.status).toBe(403);
    expect(err.response.headers["x-ratelimit-remaining"]).toBe("0");
    expect(err.response.data.message).toMatch(/API rate limit exceeded/);
    await new GitHubSimClient(s.url).setRateLimit({ limit: 20, remaining: 10 });
    expect((await api("GET /orgs/{org}/actions/runners", { org: "acme" })).headers["x-ratelimit-remaining"]).toBe("9");
  });
});

/** Talks to the broker the way the fake runner does, from a JIT config. */
async function brokerFor(s: GitHubSim, encoded: string) {
  const files = JSON.parse(Buffer.from(encoded, "base64").toString()) as Record<string, string>;
  const runner = JSON.parse(Buffer.from(files[".runner"]!, "base64").toString());
  const token = JSON.parse(Buffer.from(files[".credentials"]!, "base64").toString()).data.token;
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${s.url}/_broker${path}`, { method, headers: { authorization: `Bearer ${token}` }, body: body === undefined ? undefined : JSON.stringify(body) });
  return {
    async open(): Promise<string> {
      const res = await call("POST", "/sessions", { runner_id: runner.agentId, os: "macOS", version: "2.336.0" });
      if (res.status !== 201) throw new Error(`session: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { session_id: string }).session_id;
    },
    poll: (sid: string, waitMs = 2000) => call("GET", `/sessions/${sid}/job?wait_ms=${waitMs}`),
    result: (jobId: number, body: unknown) => call("POST", `/jobs/${jobId}/result`, body),
    close: (sid: string) => call("DELETE", `/sessions/${sid}`),
    call,
  };
}

describe("jobs and broker", () => {
  test("a job goes once to an idle runner carrying all its labels; the ephemeral runner is deleted after it", async () => {
    const s = await start();
    const api = apiFor(s, s.pat);
    const client = new GitHubSimClient(s.url);
    const linux = await brokerFor(s, ((await api("POST /orgs/{org}/actions/runners/generate-jitconfig", { org: "acme", name: "lin", runner_group_id: 1, labels: ["self-hosted", "Linux"] })).data).encoded_jit_config);
    const mac = await brokerFor(s, ((await jit(api, "orgs/acme", "mac")).data as { encoded_jit_config: string }).encoded_jit_config);
    const linSession = await linux.open();
    const macSession = await mac.open();
    const job = await client.enqueueJob({ name: "build", labels: ["MACOS", "xcode-16"], script: "true" });
    expect((await linux.poll(linSession, 200)).status).toBe(204);
    const got = await mac.poll(macSession);
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual({ job: { id: job.id, name: "build", script: "true" } });
    expect((await client.job(job.id)).status).toBe("in_progress");
    expect((await mac.result(job.id, { result: "Succeeded", exit_code: 0, output: "ok\n" })).status).toBe(204);
    const state = await client.state();
    expect(state.jobs[0]).toMatchObject({ status: "completed", result: "Succeeded", exit_code: 0, output: "ok\n", runner_name: "mac", attempts: 1 });
    expect(state.runners.map((r) => r.name)).toEqual(["lin"]);
    expect(state.runners[0]).toMatchObject({ status: "online", busy: false, os: "macOS", version: "2.336.0" });
    expect((await mac.poll(macSession)).status).toBe(404);
    expect((await mac.open().catch((e: Error) => e.message)) as string).toMatch(/^session: 404/);
  });

  test("a runner that deletes its session while holding a job: the job fails at once, never re-queued", async () => {
    const s = await start();
    const api = apiFor(s, s.pat);
    const client = new GitHubSimClient(s.url);
    const created = (await jit(api, "orgs/acme", "quitter")).data as { runner: { id: number }; encoded_jit_config: string };
    const a = await brokerFor(s, created.encoded_jit_config);
    const job = await client.enqueueJob({ name: "j", script: "true" });
    const sa = await a.open();
    expect((await a.poll(sa)).status).toBe(200);
    expect((await a.open().catch((e: Error) => e.message)) as string).toMatch(/session: 409.*A session for this runner already exists/);
    expect((await a.close(sa)).status).toBe(204);
    const state = await client.state();
    expect(state.jobs.find((j) => j.id === job.id)).toMatchObject({ status: "completed", result: "Failed", attempts: 1, failure: expect.stringMatching(/^The runner has received a shutdown signal/) });
    expect(state.runners.find((r) => r.id === created.runner.id)).toMatchObject({ status: "offline", busy: false });
    // Another listening runner never sees the job.
    const b = await brokerFor(s, ((await jit(api, "orgs/acme", "other")).data as { encoded_jit_config: string }).encoded_jit_config);
    expect((await b.poll(await b.open(), 300)).status).toBe(204);
  });

  test("a runner that goes silent holding a job stays busy (DELETE 422) for lostRunnerBusyMs, then the job fails; the runner stays registered", async () => {
    const s = await start({ sessionLeaseMs: 200 });
    const api = apiFor(s, s.pat);
    const client = new GitHubSimClient(s.url);
    expect((await client.state()).settings).toEqual({ lostRunnerBusyMs: 180_000, assignDelayMs: 50, idleJitRunnerRetireMs: 120_000 });
    const created = (await jit(api, "orgs/acme", "vanished")).data as { runner: { id: number }; encoded_jit_config: string };
    const a = await brokerFor(s, created.encoded_jit_config);
    const job = await client.enqueueJob({ name: "j", script: "true" });
    const sa = await a.open();
    expect((await a.poll(sa)).status).toBe(200);
    // The runner goes silent (VM died): no poll, no heartbeat. Its lease runs out ...
    await client.waitFor((st) => st.runners[0]!.status === "offline", { timeoutMs: 3_000 });
    // ... but the job is still in progress and the runner busy, for minutes by default.
    let state = await client.state();
    expect(state.jobs[0]).toMatchObject({ status: "in_progress", attempts: 1 });
    expect(state.runners[0]).toMatchObject({ status: "offline", busy: true });
    const busy = await fail(api("DELETE /orgs/{org}/actions/runners/{runner_id}", { org: "acme", runner_id: created.runner.id }));
    expect(busy.status).toBe(422);
    expect(busy.response.data.message).toBe('Bad request - Runner "vanished" is still running a job');
    await expect(client.retireRunner(created.runner.id)).rejects.toThrow(/422.*still running a job/);
    expect((await a.poll(sa)).status).toBe(410);
    expect((await a.result(job.id, { result: "Succeeded", exit_code: 0, output: "" })).status).toBe(410);

    expect(await client.settings({ lostRunnerBusyMs: 100 })).toEqual({ lostRunnerBusyMs: 100, assignDelayMs: 50, idleJitRunnerRetireMs: 120_000 });
    state = await client.waitFor((st) => st.jobs[0]!.status === "completed", { timeoutMs: 3_000 });
    expect(state.jobs[0]).toMatchObject({ result: "Failed", attempts: 1, failure: expect.stringMatching(/^The self-hosted runner: vanished lost communication with the server\. /) });
    expect(state.runners).toEqual([expect.objectContaining({ name: "vanished", status: "offline", busy: false, ephemeral: true })]);
    expect((await api("DELETE /orgs/{org}/actions/runners/{runner_id}", { org: "acme", runner_id: created.runner.id })).status).toBe(204);
  });

  test("a job is handed over assignDelayMs after the runner starts listening, not at once", async () => {
    const s = await start({ assignDelayMs: 400 });
    const api = apiFor(s, s.pat);
    const client = new GitHubSimClient(s.url);
    await client.enqueueJob({ name: "waiting", script: "true" });
    const a = await brokerFor(s, ((await jit(api, "orgs/acme", "late")).data as { encoded_jit_config: string }).encoded_jit_config);
    const sa = await a.open();
    const listening = performance.now();
    expect((await a.poll(sa, 100)).status).toBe(204);
    expect((await client.state()).jobs[0]!.status).toBe("queued");
    expect((await a.poll(sa, 2_000)).status).toBe(200);
    expect(performance.now() - listening).toBeGreaterThanOrEqual(390);
  });

  test("GitHub retires idle JIT runners: on request, and on its own after idleJitRunnerRetireMs", async () => {
    const s = await start({ idleJitRunnerRetireMs: 60_000 });
    const api = apiFor(s, s.pat);
    const client = new GitHubSimClient(s.url);
    const created = (await jit(api, "orgs/acme", "idle")).data as { runner: { id: number }; encoded_jit_config: string };
    const a = await brokerFor(s, created.encoded_jit_config);
    const polling = a.poll(await a.open(), 5_000);
    await client.retireRunner(created.runner.id);
    expect((await polling).status).toBe(404);
    expect((await client.state()).runners).toEqual([]);
    await expect(client.retireRunner(created.runner.id)).rejects.toThrow(/404/);

    const later = (await jit(api, "orgs/acme", "idle-later")).data as { encoded_jit_config: string };
    const b = await brokerFor(s, later.encoded_jit_config);
    const waiting = b.poll(await b.open(), 5_000);
    await client.settings({ idleJitRunnerRetireMs: 0 });
    expect((await waiting).status).toBe(404);
    expect((await client.state()).runners).toEqual([]);
  });

  test("a runner deleted while long-polling gets 404", async () => {
    const s = await start();
    const api = apiFor(s, s.pat);
    const created = (await jit(api, "orgs/acme", "del")).data as { runner: { id: number }; encoded_jit_config: string };
    const b = await brokerFor(s, created.encoded_jit_config);
    const sid = await b.open();
    const polling = b.poll(sid, 5_000);
    await new GitHubSimClient(s.url).waitFor((st) => st.runners[0]?.status === "online");
    await api("DELETE /orgs/{org}/actions/runners/{runner_id}", { org: "acme", runner_id: created.runner.id });
    expect((await polling).status).toBe(404);
  });

  test("control API rejects malformed input with a message naming the field", async () => {
    const post = (path: string, body: unknown) => fetch(`${sim.url}/_sim/${path}`, { method: "POST", body: JSON.stringify(body) });
    const noScript = await post("jobs", { name: "x" });
    expect(noScript.status).toBe(400);
    expect(((await noScript.json()) as { message: string }).message).toMatch(/"script"/);
    const badLabels = await post("jobs", { name: "x", script: "true", labels: "macOS" });
    expect(((await badLabels.json()) as { message: string }).message).toMatch(/"labels"/);
    const badCount = await post("faults", { path: "/x", count: 0 });
    expect(((await badCount.json()) as { message: string }).message).toMatch(/count/);
    const badSkip = await post("faults", { path: "/x", skip: -1 });
    expect(((await badSkip.json()) as { message: string }).message).toMatch(/skip/);
    const badRegex = await post("faults", { pathRegex: "(" });
    expect(((await badRegex.json()) as { message: string }).message).toMatch(/pathRegex/);
    await expect(control.setClockOffset(Number.NaN)).rejects.toThrow(/offsetMs/);
    await expect(control.settings({ lostRunnerBusyMs: -1 })).rejects.toThrow(/400.*lostRunnerBusyMs.* must not be negative/);
    await expect(control.settings({ lostRunnerBusy: 1 } as never)).rejects.toThrow(/400.*unknown .*lostRunnerBusy/);
  });
});

describe("faults", () => {
  test("status, secondary and primary rate limits, latency, regex paths and counts", async () => {
    const s = await start();
    const api = apiFor(s, s.pat);
    const client = new GitHubSimClient(s.url);
    const list = () => api("GET /orgs/{org}/actions/runners", { org: "acme" });

    await client.fault({ method: "GET", path: "/orgs/{org}/actions/runners", count: 2, status: 502 });
    expect((await fail(list())).status).toBe(502);
    expect((await fail(list())).status).toBe(502);
    expect((await list()).status).toBe(200);

    // skip: the first matching call passes, the next one fails, then none.
    await client.fault({ method: "GET", path: "/orgs/{org}/actions/runners", skip: 1, status: 503 });
    expect((await list()).status).toBe(200);
    expect((await fail(list())).status).toBe(503);
    expect((await list()).status).toBe(200);

    await client.fault({ path: /\/runners$/, rateLimited: "secondary", retryAfter: 7 });
    const secondary = await fail(list());
    expect(secondary.status).toBe(403);
    expect(secondary.response.headers["retry-after"]).toBe("7");
    expect(secondary.response.data.message).toMatch(/\bsecondary rate\b/i);

    await client.fault({ path: "/orgs/acme/actions/runners", rateLimited: "primary" });
    const primary = await fail(list());
    expect(primary.response.headers["x-ratelimit-remaining"]).toBe("0");

    await client.fault({ path: "/orgs/{org}/actions/runners", status: 429, body: { message: "slow down", documentation_url: "https://docs.github.com/rest" }, retryAfter: 1 });
    const custom = await fail(list());
    expect(custom.status).toBe(429);
    expect(custom.response.data.message).toBe("slow down");

    await client.fault({ path: "/orgs/{org}/actions/runners", latencyMs: 300 });
    const t0 = performance.now();
    expect((await list()).status).toBe(200);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect((await client.state()).requests.byEndpoint["GET /orgs/{org}/actions/runners"]).toBe(10);
  });

  test("latency holds the answer, not the call: a JIT runner is registered even if the client gives up waiting", async () => {
    const s = await start();
    const client = new GitHubSimClient(s.url);
    await client.fault({ method: "POST", path: "/orgs/{org}/actions/runners/generate-jitconfig", latencyMs: 1_500 });
    const gaveUp = new AbortController();
    const answered = fetch(`${s.url}/orgs/acme/actions/runners/generate-jitconfig`, {
      method: "POST",
      headers: { authorization: `token ${s.pat}` },
      body: JSON.stringify({ name: "impatient", runner_group_id: 1, labels: ["self-hosted"] }),
      signal: gaveUp.signal,
    }).then(
      () => "answered",
      () => "aborted",
    );
    await client.waitFor((st) => st.runners.some((r) => r.name === "impatient"), { timeoutMs: 1_000 });
    gaveUp.abort();
    expect(await answered).toBe("aborted");
    expect((await client.state()).runners.map((r) => r.name)).toEqual(["impatient"]);
  });

  test("a dropped response still takes effect: the retried JIT call then meets 409 (pitfall 3)", async () => {
    const s = await start();
    const api = apiFor(s, s.pat);
    const client = new GitHubSimClient(s.url);
    await client.fault({ method: "POST", path: "/orgs/{org}/actions/runners/generate-jitconfig", drop: true });
    const lost = await fail(jit(api, "orgs/acme", "lost"));
    expect(lost.status).toBe(500); // octokit reports network errors as 500
    expect((await client.state()).runners.map((r) => r.name)).toEqual(["lost"]);
    expect((await fail(jit(api, "orgs/acme", "lost"))).status).toBe(409);
    await client.fault({ path: "/orgs/{org}/actions/runners", status: 500 });
    await client.clearFaults();
    expect((await api("GET /orgs/{org}/actions/runners", { org: "acme" })).status).toBe(200);
  });
});

describe("OpenAPI validator", () => {
  test("a validating server records a drifting response as a violation", async () => {
    const s = await startGitHub({ validate: validator });
    try {
      const api = apiFor(s, s.pat);
      await new GitHubSimClient(s.url).fault({ path: "/orgs/{org}/actions/runners/{runner_id}", status: 200, body: { id: "one" } });
      await api("GET /orgs/{org}/actions/runners/{runner_id}", { org: "acme", runner_id: 1 });
      expect(s.state().violations).toEqual([expect.stringMatching(/^GET \/orgs\/\{org\}\/actions\/runners\/\{runner_id\} -> 200: .*(required|integer)/)]);
    } finally {
      await s.stop();
    }
  });

  test("flags drifting bodies and undocumented statuses; accepts observed error bodies; a server's cut of the description judges as the whole does", () => {
    const t = "/orgs/{org}/actions/runners/{runner_id}";
    // What a server checks with: the description cut to its routes (and cached in dist/sim).
    const served = loadResponseValidator([["GET", t], ["DELETE", t], ["POST", "/orgs/{org}/actions/runners/registration-token"], ["GET", "/orgs/{org}/installation"], ["GET", "/enterprises/{enterprise}/actions/runners"]]);
    for (const v of [validator, served]) {
      const good = { id: 1, name: "r", os: "macOS", status: "online", busy: false, labels: [{ name: "self-hosted" }] };
      expect(v.check("GET", t, 200, good)).toEqual([]);
      const { labels: _labels, ...noLabels } = good;
      expect(v.check("GET", t, 200, noLabels).join()).toMatch(/labels/);
      expect(v.check("GET", t, 418, {}).join()).toMatch(/status not documented/);
      expect(v.check("GET", t, 404, { message: "Not Found", documentation_url: "x", status: "404" })).toEqual([]);
      expect(v.check("GET", t, 404, { message: 404 }).join()).toMatch(/message/);
      expect(v.check("DELETE", t, 204, { unexpected: true }).join()).toMatch(/no body/);
      expect(v.check("POST", "/orgs/{org}/actions/runners/registration-token", 201, { token: "x", expires_at: "tomorrow" }).join()).toMatch(/expires_at/);
      expect(v.check("GET", "/orgs/{org}/installation", 200, { id: 1 }).join()).toMatch(/required/);
      expect(v.check("GET", "/orgs/{org}/actions/runnerz", 200, {}).join()).toMatch(/not an operation/);
      expect(v.check("GET", "/enterprises/{enterprise}/actions/runners", 200, { total_count: 0, runners: [] })).toEqual([]);
    }
    // An operation outside the cut is not one the server can be asked to check.
    expect(served.check("GET", "/orgs/{org}/actions/runners", 200, { total_count: 0, runners: [] }).join()).toMatch(/not an operation/);
  });
});
