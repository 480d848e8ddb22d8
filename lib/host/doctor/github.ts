// GitHub, step by step as a cycle needs it, then the image's runner version.
// Each call is a plain fetch: no retry hides a clock that is off (auth-app
// would silently re-sign once with the skew corrected).
import { createPrivateKey, createSign } from "node:crypto";
import type { Config } from "../../config/index.ts";
import { registerSecret } from "../../core/redact.ts";
import { inspectImageLock } from "../../image/pin.ts";
import { checkRunnerFreshness, type RunnerFreshness } from "../../image/runner-release.ts";
import { readSecretFile } from "../../core/secrets.ts";
import { slotViews } from "../slot-view.ts";
import { CONFLICT_FIX, conflictMessage, secondOwners } from "../../slot/ownership.ts";
import { hostRunnerPrefixes } from "../status.ts";
import { fail, pass, skip, skipAll, warn, withDeadline, type CheckResult, type DoctorContext } from "./types.ts";

const CHECKS = ["github-key", "github-jwt", "github-clock", "github-installation", "github-permission", "github-runner-group", "github-offline-runners", "host-id-unique"];
/** auth-app dates a JWT 30 s back and GitHub refuses an exp over 10 min ahead: past 30 s of skew JWTs start failing. */
const SKEW_FAIL_S = 30;
const SKEW_WARN_S = 5;
const CLOCK_FIX = "turn on network time (System Settings > General > Date & Time > Set time automatically, or sudo sntp -sS time.apple.com)";

interface Answer {
  status: number;
  body: any;
  /** GitHub's clock minus ours, from the Date header against the request's midpoint. */
  skewS?: number;
}

async function call(ctx: DoctorContext, url: string, init: { method?: string; auth: string }): Promise<Answer> {
  return withDeadline(ctx.timeoutMs, `GitHub (${url})`, async (signal) => {
    const sent = Date.now();
    const res = await fetch(url, {
      method: init.method ?? "GET",
      headers: { authorization: init.auth, accept: "application/vnd.github+json", "user-agent": "macos-runner-doctor", "x-github-api-version": "2022-11-28" },
      signal,
    });
    const mid = (sent + Date.now()) / 2;
    const date = Date.parse(res.headers.get("date") ?? "");
    const text = await res.text();
    let body: any = text;
    try {
      body = JSON.parse(text);
    } catch {
    }
    return { status: res.status, body, ...(Number.isFinite(date) && { skewS: Math.round((date - mid) / 1000) }) };
  });
}

const messageOf = (a: Answer) => (typeof a.body?.message === "string" ? a.body.message : String(a.body).slice(0, 200));

function jwtFor(appId: number, key: string, nowS: number): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const unsigned = `${b64({ alg: "RS256", typ: "JWT" })}.${b64({ iat: nowS - 30, exp: nowS + 540, iss: appId })}`;
  return `${unsigned}.${createSign("RSA-SHA256").update(unsigned).sign(key, "base64url")}`;
}

function clockResult(skewS: number | undefined): CheckResult {
  if (skewS === undefined) return warn("github-clock", "GitHub sent no Date header; skew unknown", CLOCK_FIX);
  const found = skewS === 0 ? "this host's clock is in step with GitHub's" : `this host's clock is ${Math.abs(skewS)} s ${skewS > 0 ? "behind" : "ahead of"} GitHub's`;
  if (Math.abs(skewS) >= SKEW_FAIL_S) return fail("github-clock", `${found}: app JWTs are refused and token expiry is misjudged`, CLOCK_FIX);
  if (Math.abs(skewS) >= SKEW_WARN_S) return warn("github-clock", found, CLOCK_FIX);
  return pass("github-clock", found);
}

function scopeUrl(config: Config): string {
  const s = config.github.scope;
  const path = s.kind === "org" ? `orgs/${s.org}` : s.kind === "repo" ? `repos/${s.owner}/${s.repo}` : `enterprises/${s.enterprise}`;
  return `${config.github.apiUrl}/${path}`;
}

const actionsPrefix = (config: Config) => `${scopeUrl(config)}/actions`;

export async function githubChecks(ctx: DoctorContext): Promise<CheckResult[]> {
  const { config } = ctx;
  if (!config) return skipAll(CHECKS, "config invalid");
  const out: CheckResult[] = [];
  const rest = (from: number, why: string) => [...out, ...skipAll(CHECKS.slice(from), why)];
  try {
    let auth: string;
    if (config.github.auth.kind === "pat") {
      let pat: string;
      try {
        pat = readSecretFile(config.github.auth.tokenPath, "github.token_path");
      } catch (err) {
        out.push(fail("github-key", (err as Error).message, "save the PAT there (mode 0600)"));
        return rest(1, "no PAT");
      }
      out.push(pass("github-key", `PAT in ${config.github.auth.tokenPath}`), skip("github-jwt", "a PAT is used, not an app"), skip("github-installation", "a PAT is used, not an app"));
      auth = `token ${pat}`;
      const list = await call(ctx, `${actionsPrefix(config)}/runners?per_page=1`, { auth });
      out.push(clockResult(list.skewS));
      if (list.status !== 200) {
        out.push(fail("github-permission", `GET runners answered ${list.status} "${messageOf(list)}"`, `the PAT's user must be an admin of ${config.github.url} (classic PAT: admin:org for an org, repo for a repo)`));
        return rest(5, "the PAT cannot list runners");
      }
      // Proving write access would mean creating a credential; the first cycle shows it.
      out.push(pass("github-permission", "the PAT can list runners"));
    } else {
      const { appId, privateKeyPath } = config.github.auth;
      let key: string;
      try {
        key = readSecretFile(privateKeyPath, "github.app.private_key_path");
        const k = createPrivateKey(key);
        if (k.asymmetricKeyType !== "rsa") throw new Error(`a ${k.asymmetricKeyType} key, not RSA`);
        out.push(pass("github-key", `${privateKeyPath}: an RSA private key (${k.asymmetricKeyDetails?.modulusLength ?? "?"} bits)`));
      } catch (err) {
        out.push(fail("github-key", `${privateKeyPath} is not a usable PEM private key (${(err as Error).message})`, "generate a new private key on the GitHub App's settings page and save the .pem there (mode 0600)"));
        return rest(1, "no usable app key");
      }
      if (config.github.scope.kind === "enterprise") return rest(1, "GitHub Apps cannot manage enterprise runners");
      const url = `${scopeUrl(config)}/installation`;
      const jwt = `bearer ${jwtFor(appId, key, Math.floor(Date.now() / 1000))}`;
      const inst = await call(ctx, url, { auth: jwt });
      const clock = clockResult(inst.skewS);
      if (inst.status === 401) {
        const msg = messageOf(inst);
        if (/Integration not found/i.test(msg)) out.push(fail("github-jwt", `GitHub knows no app with id ${appId} ("${msg}")`, "set github.app.id to the App ID shown on the app's settings page"));
        else if (/'(Expiration time|Issued at)' claim/.test(msg)) out.push(fail("github-jwt", `GitHub refused the JWT: "${msg}"`, "fix this host's clock (see github-clock)"));
        else out.push(fail("github-jwt", `GitHub refused the JWT: "${msg}"`, `the key in ${privateKeyPath} is not one of app ${appId}'s keys; generate a new one on the app's settings page`));
        out.push(clock);
        return rest(3, "no JWT accepted");
      }
      out.push(pass("github-jwt", `GitHub accepted a JWT for app ${appId}`), clock);
      if (inst.status === 404) {
        out.push(fail("github-installation", `the app is not installed on ${config.github.url} (${url} answered 404)`, `install the GitHub App on ${config.github.url} (the app's page > Install App)`));
        return rest(4, "no installation");
      }
      if (inst.status !== 200) {
        out.push(fail("github-installation", `${url} answered ${inst.status} "${messageOf(inst)}"`, "retry later; GitHub may be having an outage"));
        return rest(4, "no installation");
      }
      const id = inst.body.id as number;
      const configured = config.github.auth.installationId;
      if (configured !== undefined && configured !== id) {
        out.push(fail("github-installation", `github.app.installation_id is ${configured}, but the app's installation on ${config.github.url} is ${id}`, `set github.app.installation_id to ${id} (or remove it)`));
        return rest(4, "wrong installation id");
      }
      out.push(pass("github-installation", `installation ${id} on ${config.github.url}`));

      // Every cycle mints a token anyway; it changes nothing and states what the installation may do.
      const tok = await call(ctx, `${config.github.apiUrl}/app/installations/${id}/access_tokens`, { method: "POST", auth: jwt });
      if (tok.status !== 201 || typeof tok.body?.token !== "string") {
        out.push(fail("github-permission", `minting an installation token answered ${tok.status} "${messageOf(tok)}"`, "check the installation is not suspended (the app's page > Configure)"));
        return rest(5, "no installation token");
      }
      registerSecret(tok.body.token);
      auth = `token ${tok.body.token}`;
      const perm = config.github.scope.kind === "repo" ? "administration" : "organization_self_hosted_runners";
      const granted = tok.body.permissions?.[perm] as string | undefined;
      if (granted !== "write") {
        out.push(fail("github-permission", `the installation grants ${perm}: ${granted ?? "none"} (runners need write)`,
          `add the "${perm}" permission (Read and write) in the app's settings, then approve it on the installation for ${config.github.url}`));
        return rest(5, "no permission to manage runners");
      }
      out.push(pass("github-permission", `the installation grants ${perm}: write`));
    }

    const group = config.runner.group;
    if (group === "Default") out.push(pass("github-runner-group", "Default (id 1)"));
    else {
      const g = await call(ctx, `${actionsPrefix(config)}/runner-groups?per_page=100`, { auth });
      const names = ((g.body?.runner_groups ?? []) as { name: string }[]).map((x) => x.name);
      if (g.status !== 200) out.push(fail("github-runner-group", `listing runner groups answered ${g.status} "${messageOf(g)}"`, "check the permission above"));
      else if (!names.includes(group)) out.push(fail("github-runner-group", `no runner group "${group}" in ${config.github.url} (groups: ${names.join(", ")})`, `create it (Settings > Actions > Runner groups) or fix runner.group`));
      else out.push(pass("github-runner-group", `"${group}" exists`));
    }

    const prefixes = hostRunnerPrefixes(config.runner.namePrefix, ctx.host);
    const mine: { id: number; name: string; status: string; busy: boolean }[] = [];
    for (let page = 1; page <= 50; page++) {
      const r = await call(ctx, `${actionsPrefix(config)}/runners?per_page=100&page=${page}`, { auth });
      if (r.status !== 200) {
        out.push(fail("github-offline-runners", `listing runners answered ${r.status} "${messageOf(r)}"`, "check the permission above"));
        return out;
      }
      const runners = r.body.runners as { id: number; name: string; status: string; busy: boolean }[];
      mine.push(...runners.filter((x) => prefixes.some((p) => x.name.startsWith(p))));
      if (runners.length < 100) break;
    }
    // A slot's current runner is offline until it connects.
    const views = slotViews(config.host.stateDir, config.host.slots);
    const named = new Set(views.flatMap((v) => v.runner_name ?? []));
    const offline = mine.filter((r) => r.status === "offline" && !r.busy && !named.has(r.name));
    if (offline.length > 0) {
      out.push(warn("github-offline-runners", `${offline.length} offline runner(s) of this host: ${offline.slice(0, 5).map((r) => `${r.name} (${r.id})`).join(", ")}${offline.length > 5 ? ", ..." : ""}`,
        "a slot removes its own at its next start (cleanup --slot N); GitHub drops offline ephemeral runners after a day"));
    } else out.push(pass("github-offline-runners", `${mine.length} runner(s) of this host registered, none offline`));
    out.push(await hostIdUnique(ctx, mine, new Set([...named, ...views.flatMap((v) => v.ghosts.map((g) => g.name))]), `${config.runner.namePrefix}-${ctx.host}-`));
    return out;
  } catch (err) {
    const why = `GitHub unreachable: ${(err as Error).message}`;
    const done = new Set(out.map((r) => r.check));
    return [...out, ...CHECKS.filter((c) => !done.has(c)).map((c, i) => (i === 0 ? fail(c, why, `check ${config.github.apiUrl} is reachable from this host (proxy, DNS, firewall)`) : skip(c, "GitHub unreachable")))];
  }
}

/** FAIL when a runner named like this host's is online and neither a slot's state nor tart here knows it. */
async function hostIdUnique(ctx: DoctorContext, mine: { id: number; name: string; status: string }[], named: Set<string>, namePrefix: string): Promise<CheckResult> {
  if (!ctx.tart) return skip("host-id-unique", "tart is not usable here (see the tart checks): its VMs are part of the evidence");
  let vms: Set<string>;
  try {
    vms = new Set((await ctx.tart.list()).map((v) => v.Name));
  } catch (err) {
    return skip("host-id-unique", `tart list failed (${(err as Error).message}): its VMs are part of the evidence`);
  }
  const others = mine.filter((r) => secondOwners(r, { named, vms }));
  if (others.length > 0) return fail("host-id-unique", conflictMessage(others.slice(0, 5), namePrefix), CONFLICT_FIX);
  return pass("host-id-unique", `host id "${ctx.host}": no runner named like this host's is online elsewhere`);
}

// The baked runner's age, by the one rule pull --runner-check and selftest use
// (image/runner-release.ts): an unchanged image ages into GitHub's 30-day cut-off.

const REBUILD = "rebuild the golden image with the latest actions/runner and publish it";

/** `where`: the version's source ("image.lock", "runner 2.330.0 in the guest"). */
export async function runnerFreshnessCheck(where: string, imageVersion: string, releasesUrl: string, timeoutMs: number): Promise<CheckResult> {
  let f: RunnerFreshness;
  try {
    f = await checkRunnerFreshness({ imageVersion, releasesUrl, timeoutMs });
  } catch (err) {
    return warn("runner-version", `${where}: runner ${imageVersion}, not checked (${(err as Error).message})`, "compare with https://github.com/actions/runner/releases by hand");
  }
  const found = `${where}: ${f.message}`;
  if (f.verdict === "error") return fail("runner-version", found, REBUILD);
  if (f.verdict === "warn") return warn("runner-version", found, `${REBUILD} soon`);
  return pass("runner-version", found);
}

export async function runnerVersionCheck(ctx: DoctorContext): Promise<CheckResult[]> {
  const { config } = ctx;
  if (!config) return [skip("runner-version", "config invalid")];
  const { lock } = inspectImageLock(config.host.stateDir);
  if (!lock?.runner_version) return [skip("runner-version", "the image records no runner version (image.lock runner_version)")];
  return [await runnerFreshnessCheck("image.lock", lock.runner_version, config.image.runnerReleasesUrl, ctx.timeoutMs)];
}
