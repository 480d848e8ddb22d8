// The GitHub client of one cycle: authenticated runner routes, the retry policy
// and the cached group ids. Creating it reads the secret files, no API call.
// GitHub App credentials (the installation id and its token) are cached on disk
// and shared by a host's slots (one fetches under a file lock, the other reuses
// it). Both heal once: a cached token GitHub refuses (401) is replaced; a cached
// installation id GitHub does not know (404) is looked up again.
import { mkdirSync } from "node:fs";
import { createAppAuth } from "@octokit/auth-app";
import type { EndpointOptions } from "@octokit/types";
import type { Config } from "../config/index.ts";
import { MacosRunnerError } from "../core/errors.ts";
import { FileLock } from "../core/flock.ts";
import type { Logger } from "../core/log.ts";
import { registerSecret } from "../core/redact.ts";
import { readSecretFile } from "../core/secrets.ts";
import { sleep as realSleep, systemClock, type Clock } from "../core/wait.ts";
import { answers, type ExpiringToken } from "./answers.ts";
import { isPositiveInteger, JsonMapFile, stateFiles, stateKeys, TokenCache } from "./cache.ts";
import { explain, isHttpError, isRateLimited, networkFailure, type RetryOptions } from "./errors.ts";
import { baseRequest, installationLookup, octokitLog, runnerRoutes, type Request, type RunnerRoutes } from "./http.ts";

type GitHubConfig = Config["github"];

export interface GitHubClient {
  routes: RunnerRoutes;
  /** github.url, named in errors. */
  scopeUrl: string;
  /** What the runner endpoints need, named in errors. */
  permission: string;
  log: Logger;
  retry: RetryOptions;
  /** Cached on disk: a non-Default group costs no call per job. */
  groupIds: { get(name: string): number | undefined; set(name: string, id: number): void; delete(name: string): void };
}

export interface ClientOptions {
  stateDir: string;
  log: Logger;
  timeoutMs?: number | undefined;
  maxBodyBytes?: number | undefined;
  /** Its clock and sleep also drive the token expiry and the 401 replication wait. */
  retry?: RetryOptions;
}

export function createGitHubClient(github: GitHubConfig, opts: ClientOptions): GitHubClient {
  const log = opts.log;
  const base = baseRequest({ apiUrl: github.apiUrl, log, timeoutMs: opts.timeoutMs, maxBodyBytes: opts.maxBodyBytes });
  const permission = github.scope.kind === "repo" ? "administration" : "organization_self_hosted_runners";
  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });

  const request = github.auth.kind === "pat"
    ? base.defaults({ headers: { authorization: `token ${readSecretFile(github.auth.tokenPath, "github.token_path")}` } })
    : base.defaults({ request: { hook: appAuthHook({ github, auth: github.auth, base, permission, ...opts }) } });

  const groups = new JsonMapFile(stateFiles.groups(opts.stateDir), isPositiveInteger);
  const groupKey = (name: string) => stateKeys.group(github, name);
  return {
    routes: runnerRoutes(request, github.scope),
    scopeUrl: github.url,
    permission,
    log,
    retry: {
      onRetry: (i) => log.warn("github.retry", `GitHub ${i.reason}; retrying in ${i.waitMs} ms`, { status: i.status, attempt: i.attempt, wait_ms: i.waitMs }),
      ...opts.retry,
    },
    groupIds: {
      get: (name) => groups.get(groupKey(name)),
      set: (name, id) => groups.set(groupKey(name), id),
      delete: (name) => groups.delete(groupKey(name)),
    },
  };
}

/** Its retries wait on `clock` (the slot's). */
export function githubFor(config: Config, log: Logger, clock: Clock = systemClock): GitHubClient {
  return createGitHubClient(config.github, { stateDir: config.host.stateDir, log, retry: { sleep: (ms) => clock.sleep(ms) } });
}

interface InstallationToken extends ExpiringToken {
  installationId: number;
  /** From the cache, so a 401 may mean it was revoked. */
  cached: boolean;
}

/** A slot's wait for the other slot's token fetch. */
const LOCK_WAIT_MS = 30_000;
/** auth-app's wait for a just-minted token GitHub has not replicated yet. */
const REPLICATION_DELAY_MS = 1000;

/** The request hook that authenticates as the App's installation; on a 401 it retries once: with a fresh token if the refused one was cached, else after the replication delay. */
function appAuthHook(o: ClientOptions & { github: GitHubConfig; auth: Extract<GitHubConfig["auth"], { kind: "app" }>; base: Request; permission: string }) {
  const { github, log } = o;
  const sleep = o.retry?.sleep ?? realSleep;
  const tokens = new TokenCache(stateFiles.tokens(o.stateDir), o.retry?.now);
  const installationIds = new JsonMapFile(stateFiles.installations(o.stateDir), isPositiveInteger);
  const installationKey = stateKeys.installation(github);
  const lockPath = stateFiles.credentialsLock(o.stateDir);
  const tokenKey = (authAppKey: string | number) => stateKeys.token(github, authAppKey);
  // auth-app's own token fetch goes through its hook too, for its clock-skew retry.
  const appRequest = o.base.defaults({ request: { hook: (request: Request, options: EndpointOptions) => auth.hook(request, options) } });
  const auth = createAppAuth({
    appId: o.auth.appId,
    privateKey: readSecretFile(o.auth.privateKeyPath, "github.app.private_key_path"),
    request: appRequest,
    log: octokitLog(log),
    // A miss is undefined, as from auth-app's default cache (its type says string).
    cache: { get: (k: string) => tokens.get(tokenKey(k)) as string, set: (k: string, v: string) => tokens.set(tokenKey(k), v) },
  });

  const knownInstallation = (): { id: number; source: "config" | "cache" } | undefined => {
    if (o.auth.installationId !== undefined) return { id: o.auth.installationId, source: "config" };
    const id = installationIds.get(installationKey);
    return id === undefined ? undefined : { id, source: "cache" };
  };

  /** A transient failure is left as it is for withRetries to retry the whole call. */
  const explained = (err: unknown, where: string, tried?: string): unknown => {
    if (!isHttpError(err) || err instanceof MacosRunnerError) return err;
    if (err.status >= 500 || networkFailure(err) !== undefined || isRateLimited(err)) return err;
    if (tried) err.tried = tried;
    return explain(err, where, { permission: o.permission, scopeUrl: github.url });
  };

  const lookUp = async (tried?: string): Promise<number> => {
    const { scope, url } = github;
    if (scope.kind === "enterprise") throw new MacosRunnerError("GitHub Apps cannot manage enterprise runners; use github.token_path", { kind: "config" });
    const where = `looking up the GitHub App installation for ${url}`;
    try {
      const id = answers.installationId(where, (await installationLookup(appRequest, scope)).data);
      installationIds.set(installationKey, id);
      log.info("github.installation_found", `GitHub App installation ${id} serves ${url}`);
      return id;
    } catch (err) {
      throw explained(err, where, tried);
    }
  };

  const installationToken = async (installationId: number, refresh = false): Promise<InstallationToken> => {
    const got = await auth({ type: "installation", installationId, refresh });
    const t = answers.expiringToken(`fetching an installation token for installation ${installationId}`, { token: got.token, expires_at: got.expiresAt });
    registerSecret(t.token);
    const cached = tokens.handedOut.has(t.token);
    if (!cached) log.info("github.token_fetched", `installation token fetched for installation ${installationId}, valid until ${t.expiresAt}`);
    return { ...t, installationId, cached };
  };

  const fetchToken = async (refresh = false): Promise<InstallationToken> => {
    const known = knownInstallation();
    const id = known?.id ?? (await lookUp());
    const where = (n: number) => `fetching an installation token for installation ${n}${known?.source === "config" ? " (github.app.installation_id)" : ""}`;
    try {
      return await installationToken(id, refresh);
    } catch (err) {
      const stale = known?.source === "cache" && isHttpError(err) && err.status === 404 && !(err instanceof MacosRunnerError);
      if (!stale) throw explained(err, where(id));
    }
    log.warn("github.installation_stale", `GitHub does not know the cached installation id ${id} (404); dropping it and looking the installation up again`);
    installationIds.delete(installationKey);
    const tried = `the cached installation id ${id} had answered 404, so it was dropped and the installation looked up again`;
    const again = await lookUp(tried);
    try {
      return await installationToken(again, refresh);
    } catch (err) {
      throw explained(err, where(again), `${tried} (found ${again})`);
    }
  };

  const underLock = async <T>(fn: () => Promise<T>): Promise<T> => {
    const deadline = Date.now() + LOCK_WAIT_MS;
    let lock = FileLock.tryAcquire(lockPath);
    while (!lock && Date.now() < deadline) {
      await realSleep(50); // a real wait: the holder's HTTP call must get the event loop
      lock = FileLock.tryAcquire(lockPath);
    }
    if (!lock) {
      const pid = FileLock.holderPid(lockPath);
      log.warn("github.lock_timeout", `${lockPath} is still held${pid ? ` by pid ${pid}` : ""} after ${LOCK_WAIT_MS} ms; fetching the token without it`);
    }
    try {
      return await fn();
    } finally {
      lock?.release();
    }
  };

  const token = async (): Promise<InstallationToken> => {
    const known = knownInstallation();
    // auth-app keys a token by its installation id.
    if (known && tokens.get(tokenKey(known.id))) return installationToken(known.id);
    return underLock(() => fetchToken());
  };

  /** The token another slot cached in place of `refused`, else a fresh one. */
  const replace = (refused: InstallationToken): Promise<InstallationToken> =>
    underLock(async () => {
      const current = await fetchToken();
      return current.token !== refused.token ? current : fetchToken(true);
    });

  return async (request: Request, options: EndpointOptions) => {
    const send = (t: InstallationToken) => request({ ...options, headers: { ...options.headers, authorization: `token ${t.token}` } });
    const first = await token();
    try {
      return await send(first);
    } catch (err) {
      if (!isHttpError(err) || err.status !== 401) throw err;
    }
    let second: InstallationToken;
    let tried: string;
    if (first.cached) {
      log.warn("github.token_refused", `GitHub refused the cached installation token (401); dropping it and fetching a fresh one`);
      second = await replace(first);
      tried = "that was a freshly fetched installation token: the cached one had been refused (401) first, so it was dropped and a new one fetched";
    } else {
      await sleep(REPLICATION_DELAY_MS);
      second = first;
      tried = `that was an installation token fetched just now, refused once before and retried after ${REPLICATION_DELAY_MS} ms (GitHub's replication delay)`;
    }
    try {
      return await send(second);
    } catch (err) {
      if (isHttpError(err) && err.status === 401) err.tried = tried;
      throw err;
    }
  };
}
