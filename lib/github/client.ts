// An authenticated @octokit/request for the configured scope: GitHub App
// (installation token cached on disk, installation id looked up once and
// cached) or a PAT. Every call has a timeout.
import { createAppAuth } from "@octokit/auth-app";
import { request as octokitRequest } from "@octokit/request";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config.ts";
import { writeFileAtomic } from "../fs.ts";
import { registerSecret } from "../redact.ts";
import { explain, isHttpError } from "./errors.ts";
import { fileTokenCache } from "./token-cache.ts";

export type Request = typeof octokitRequest;
type GitHubConfig = Config["github"];

export interface GitHubClient {
  request: Request;
  /** `/orgs/acme/actions`, `/repos/acme/app/actions` or `/enterprises/acme/actions`. */
  actionsPrefix: string;
  /** Permission the runner endpoints need, named in errors. */
  permission: string;
  scopeUrl: string;
}

export interface ClientOptions {
  stateDir: string;
  timeoutMs?: number;
}

function actionsPrefix(scope: GitHubConfig["scope"]): string {
  switch (scope.kind) {
    case "org": return `/orgs/${scope.org}/actions`;
    case "repo": return `/repos/${scope.owner}/${scope.repo}/actions`;
    case "enterprise": return `/enterprises/${scope.enterprise}/actions`;
  }
}

function installationRoute(scope: GitHubConfig["scope"]): string {
  switch (scope.kind) {
    case "org": return `GET /orgs/${scope.org}/installation`;
    case "repo": return `GET /repos/${scope.owner}/${scope.repo}/installation`;
    case "enterprise": throw new Error("GitHub Apps cannot manage enterprise runners; use github.token_path");
  }
}

function readSecret(path: string): string {
  const value = readFileSync(path, "utf8").trim();
  registerSecret(value);
  return value;
}

export async function createGitHubClient(github: GitHubConfig, opts: ClientOptions): Promise<GitHubClient> {
  const timeoutMs = opts.timeoutMs ?? 20_000;
  const base = octokitRequest.defaults({
    baseUrl: github.apiUrl,
    headers: { "user-agent": "macos-runner", "x-github-api-version": "2022-11-28" },
    request: { fetch: (url: string, init: RequestInit) => fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) }) },
  });
  const prefix = actionsPrefix(github.scope);
  const permission = github.scope.kind === "repo" ? "administration" : "organization_self_hosted_runners";
  const client = (request: Request): GitHubClient => ({ request, actionsPrefix: prefix, permission, scopeUrl: github.url });

  if (github.auth.kind === "pat") {
    const pat = readSecret(github.auth.tokenPath);
    return client(base.defaults({ headers: { authorization: `token ${pat}` } }));
  }

  const { appId, privateKeyPath } = github.auth;
  const privateKey = readSecret(privateKeyPath);
  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
  const cache = fileTokenCache(join(opts.stateDir, "github-token-cache.json"));
  const installationId = github.auth.installationId ?? (await lookUpInstallation(github, base, privateKey, opts.stateDir));
  const auth = createAppAuth({ appId, privateKey, installationId, request: base, cache });
  return client(base.defaults({ request: { hook: auth.hook } }));
}

/** Finds the app's installation on the configured org or repo; cached on disk, since it never changes. */
async function lookUpInstallation(github: GitHubConfig, base: Request, privateKey: string, stateDir: string): Promise<number> {
  const file = join(stateDir, "github-installation.json");
  const key = `${github.apiUrl} ${github.url}`;
  let known: Record<string, number> = {};
  try {
    known = JSON.parse(readFileSync(file, "utf8"));
  } catch {
    // first lookup on this host
  }
  if (known[key]) return known[key];
  if (github.auth.kind !== "app") throw new Error("installation lookup needs a GitHub App");
  const auth = createAppAuth({ appId: github.auth.appId, privateKey, request: base });
  try {
    const { data } = await base.defaults({ request: { hook: auth.hook } })(installationRoute(github.scope));
    const id = (data as { id: number }).id;
    writeFileAtomic(file, JSON.stringify({ ...known, [key]: id }), 0o600);
    return id;
  } catch (err) {
    if (isHttpError(err)) {
      throw explain(err, `looking up the GitHub App installation for ${github.url}`, {
        permission: "organization_self_hosted_runners",
        scopeUrl: github.url,
      });
    }
    throw err;
  }
}

/** The one GitHub client of a cycle, from the config. */
export async function githubFor(config: Config): Promise<GitHubClient> {
  return createGitHubClient(config.github, { stateDir: config.host.stateDir });
}
