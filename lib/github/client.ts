// The GitHub client of one cycle: authenticated runner routes, the retry policy
// and the cached group ids. Creating it reads the secret files, no API call.
import { mkdirSync } from "node:fs";
import type { Config } from "../config/index.ts";
import type { Logger } from "../core/log.ts";
import { systemClock, type Clock } from "../core/wait.ts";
import { readSecretFile } from "../core/secrets.ts";
import { AppCredentials } from "./credentials.ts";
import { baseRequest, runnerRoutes, type Request, type RunnerRoutes } from "./http.ts";
import { isPositiveInteger, JsonMapFile, stateFiles, stateKeys } from "./cache.ts";
import type { RetryOptions } from "./errors.ts";

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

  let request: Request;
  if (github.auth.kind === "pat") {
    const pat = readSecretFile(github.auth.tokenPath, "github.token_path");
    request = base.defaults({ headers: { authorization: `token ${pat}` } });
  } else {
    const credentials = new AppCredentials({
      github,
      auth: github.auth,
      privateKey: readSecretFile(github.auth.privateKeyPath, "github.app.private_key_path"),
      base,
      stateDir: opts.stateDir,
      log,
      permission,
      now: opts.retry?.now,
      sleep: opts.retry?.sleep,
    });
    request = base.defaults({ request: { hook: credentials.hook } });
  }

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
