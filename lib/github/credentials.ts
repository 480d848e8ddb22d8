// GitHub App credentials: the installation id and its token, cached on disk and
// shared by a host's slots (one fetches under a file lock, the other reuses it).
// Both heal once: a cached token GitHub refuses (401) is replaced; a cached
// installation id GitHub does not know (404) is looked up again.
import { createAppAuth } from "@octokit/auth-app";
import type { EndpointOptions } from "@octokit/types";
import type { Config } from "../config/index.ts";
import { MacosRunnerError } from "../core/errors.ts";
import { FileLock } from "../core/flock.ts";
import type { Logger } from "../core/log.ts";
import { registerSecret } from "../core/redact.ts";
import { sleep as realSleep } from "../core/wait.ts";
import { answers, type ExpiringToken } from "./answers.ts";
import { explain, isHttpError, isRateLimited, networkFailure } from "./errors.ts";
import { installationLookup, octokitLog, type Request } from "./http.ts";
import { isPositiveInteger, JsonMapFile, stateFiles, stateKeys, TokenCache } from "./cache.ts";

type GitHubConfig = Config["github"];
type AppAuth = Extract<GitHubConfig["auth"], { kind: "app" }>;

export interface InstallationToken extends ExpiringToken {
  installationId: number;
  /** From the cache, so a 401 may mean it was revoked. */
  cached: boolean;
}

export interface CredentialsOptions {
  github: GitHubConfig;
  auth: AppAuth;
  privateKey: string;
  /** No auth; the app routes get auth-app's hook on top. */
  base: Request;
  stateDir: string;
  log: Logger;
  permission: string;
  now?: (() => number) | undefined;
  sleep?: ((ms: number) => Promise<void>) | undefined;
}

/** A slot's wait for the other slot's token fetch. */
const LOCK_WAIT_MS = 30_000;
/** auth-app's wait for a just-minted token GitHub has not replicated yet. */
const REPLICATION_DELAY_MS = 1000;

interface KnownInstallation {
  id: number;
  source: "config" | "cache";
}

export class AppCredentials {
  private readonly appRequest: Request;
  private readonly auth: ReturnType<typeof createAppAuth>;
  private readonly tokens: TokenCache;
  private readonly installationIds: JsonMapFile<number>;
  private readonly installationKey: string;
  private readonly lockPath: string;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly o: CredentialsOptions) {
    this.tokens = new TokenCache(stateFiles.tokens(o.stateDir), o.now);
    const key = (authAppKey: string) => stateKeys.token(o.github, authAppKey);
    // auth-app's own token fetch goes through its hook too, for its clock-skew retry.
    this.appRequest = o.base.defaults({ request: { hook: (request: Request, options: EndpointOptions) => this.auth.hook(request, options) } });
    this.auth = createAppAuth({
      appId: o.auth.appId,
      privateKey: o.privateKey,
      request: this.appRequest,
      log: octokitLog(o.log),
      // A miss is undefined, as from auth-app's default cache (its type says string).
      cache: { get: (k: string) => this.tokens.get(key(k)) as string, set: (k: string, v: string) => this.tokens.set(key(k), v) },
    });
    this.installationIds = new JsonMapFile(stateFiles.installations(o.stateDir), isPositiveInteger);
    this.installationKey = stateKeys.installation(o.github);
    this.lockPath = stateFiles.credentialsLock(o.stateDir);
    this.sleep = o.sleep ?? realSleep;
  }

  /** On a 401 retries once: with a fresh token if the refused one was cached, else after the replication delay. */
  readonly hook = async (request: Request, options: EndpointOptions) => {
    const send = (t: InstallationToken) => request({ ...options, headers: { ...options.headers, authorization: `token ${t.token}` } });
    const first = await this.token();
    try {
      return await send(first);
    } catch (err) {
      if (!isHttpError(err) || err.status !== 401) throw err;
    }
    let second: InstallationToken;
    let tried: string;
    if (first.cached) {
      this.o.log.warn("github.token_refused", `GitHub refused the cached installation token (401); dropping it and fetching a fresh one`);
      second = await this.replace(first);
      tried = "that was a freshly fetched installation token: the cached one had been refused (401) first, so it was dropped and a new one fetched";
    } else {
      await this.sleep(REPLICATION_DELAY_MS);
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

  async token(): Promise<InstallationToken> {
    const known = this.knownInstallation();
    // auth-app keys a token by its installation id.
    if (known && this.tokens.get(stateKeys.token(this.o.github, known.id))) return this.installationToken(known.id);
    return this.underLock(() => this.fetchToken(this.knownInstallation()));
  }

  /** The token another slot cached in place of `refused`, else a fresh one. */
  private async replace(refused: InstallationToken): Promise<InstallationToken> {
    return this.underLock(async () => {
      const current = await this.fetchToken(this.knownInstallation());
      return current.token !== refused.token ? current : this.fetchToken(this.knownInstallation(), true);
    });
  }

  private knownInstallation(): KnownInstallation | undefined {
    if (this.o.auth.installationId !== undefined) return { id: this.o.auth.installationId, source: "config" };
    const id = this.installationIds.get(this.installationKey);
    return id === undefined ? undefined : { id, source: "cache" };
  }

  private async fetchToken(known: KnownInstallation | undefined, refresh = false): Promise<InstallationToken> {
    const id = known?.id ?? (await this.lookUp());
    const where = (n: number) => `fetching an installation token for installation ${n}${known?.source === "config" ? " (github.app.installation_id)" : ""}`;
    try {
      return await this.installationToken(id, refresh);
    } catch (err) {
      const stale = known?.source === "cache" && isHttpError(err) && err.status === 404 && !(err instanceof MacosRunnerError);
      if (!stale) throw this.explained(err, where(id));
    }
    this.o.log.warn("github.installation_stale", `GitHub does not know the cached installation id ${id} (404); dropping it and looking the installation up again`);
    this.installationIds.delete(this.installationKey);
    const tried = `the cached installation id ${id} had answered 404, so it was dropped and the installation looked up again`;
    const again = await this.lookUp(tried);
    try {
      return await this.installationToken(again, refresh);
    } catch (err) {
      throw this.explained(err, where(again), `${tried} (found ${again})`);
    }
  }

  private async lookUp(tried?: string): Promise<number> {
    const { scope, url } = this.o.github;
    if (scope.kind === "enterprise") throw new MacosRunnerError("GitHub Apps cannot manage enterprise runners; use github.token_path", { kind: "config" });
    const where = `looking up the GitHub App installation for ${url}`;
    try {
      const id = answers.installationId(where, (await installationLookup(this.appRequest, scope)).data);
      this.installationIds.set(this.installationKey, id);
      this.o.log.info("github.installation_found", `GitHub App installation ${id} serves ${url}`);
      return id;
    } catch (err) {
      throw this.explained(err, where, tried);
    }
  }

  private async installationToken(installationId: number, refresh = false): Promise<InstallationToken> {
    const got = await this.auth({ type: "installation", installationId, refresh });
    const t = answers.expiringToken(`fetching an installation token for installation ${installationId}`, { token: got.token, expires_at: got.expiresAt });
    registerSecret(t.token);
    const cached = this.tokens.handedOut.has(t.token);
    if (!cached) this.o.log.info("github.token_fetched", `installation token fetched for installation ${installationId}, valid until ${t.expiresAt}`);
    return { ...t, installationId, cached };
  }

  /** A transient failure is left as it is for withRetries to retry the whole call. */
  private explained(err: unknown, where: string, tried?: string): unknown {
    if (!isHttpError(err) || err instanceof MacosRunnerError) return err;
    if (err.status >= 500 || networkFailure(err) !== undefined || isRateLimited(err)) return err;
    if (tried) err.tried = tried;
    return explain(err, where, { permission: this.o.permission, scopeUrl: this.o.github.url });
  }

  private async underLock<T>(fn: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    let lock = FileLock.tryAcquire(this.lockPath);
    while (!lock && Date.now() < deadline) {
      await realSleep(50); // a real wait: the holder's HTTP call must get the event loop
      lock = FileLock.tryAcquire(this.lockPath);
    }
    if (!lock) {
      const pid = FileLock.holderPid(this.lockPath);
      this.o.log.warn("github.lock_timeout", `${this.lockPath} is still held${pid ? ` by pid ${pid}` : ""} after ${LOCK_WAIT_MS} ms; fetching the token without it`);
    }
    try {
      return await fn();
    } finally {
      lock?.release();
    }
  }
}

