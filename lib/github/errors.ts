// GitHub failures a user can act on, each with what to fix. Every error keeps
// the HTTP status and GitHub's own message (never request headers: they hold tokens).
import { MacosRunnerError, type ExitKind } from "../errors.ts";

export interface HttpErrorLike {
  status: number;
  message: string;
  response?: { headers: Record<string, string | number | undefined>; data?: unknown };
}

export class GitHubError extends MacosRunnerError {
  readonly status: number;
  readonly githubMessage: string;
  constructor(message: string, status: number, githubMessage: string, kind: ExitKind = "failure") {
    super(message, { kind });
    this.status = status;
    this.githubMessage = githubMessage;
  }
}

/** 401: wrong app id or key, a clock off by minutes, or a revoked PAT. */
export class GitHubAuthError extends GitHubError {}
/** 403 "Resource not accessible by integration": the app lacks a permission. */
export class GitHubPermissionError extends GitHubError {}
/** 404 on installation or runner endpoints: app not installed, wrong URL, or PAT user not an admin. */
export class GitHubNotFoundError extends GitHubError {}
/** Rate limit whose reset is further away than we are willing to wait in-process. */
export class GitHubRateLimitError extends GitHubError {
  readonly retryAtMs: number;
  constructor(message: string, status: number, githubMessage: string, retryAtMs: number) {
    super(message, status, githubMessage, "tempfail");
    this.retryAtMs = retryAtMs;
  }
}
/** 5xx or network failure that outlasted our retries. */
export class GitHubUnavailableError extends GitHubError {}
/** 422 from generate-jitconfig: group full or bad labels/group. */
export class GitHubRejectedError extends GitHubError {}

/** An octokit RequestError or anything else carrying an HTTP status. */
export function isHttpError(err: unknown): err is HttpErrorLike {
  return typeof (err as HttpErrorLike | undefined)?.status === "number";
}

export function githubMessageOf(err: HttpErrorLike): string {
  const data = err.response?.data as { message?: string } | undefined;
  return typeof data?.message === "string" ? data.message : err.message;
}

export function header(err: HttpErrorLike, name: string): string | undefined {
  const v = err.response?.headers?.[name];
  return v === undefined ? undefined : String(v);
}

export function isRateLimited(err: HttpErrorLike): boolean {
  if (err.status !== 403 && err.status !== 429) return false;
  return header(err, "x-ratelimit-remaining") === "0" || header(err, "retry-after") !== undefined || /\bsecondary rate\b/i.test(githubMessageOf(err));
}

/** Turns an octokit RequestError into the error a user can act on. */
export function explain(err: HttpErrorLike, where: string, fix: { permission: string; scopeUrl: string }): GitHubError {
  const gh = githubMessageOf(err);
  const at = `${where}: GitHub said ${err.status} "${gh}"`;
  switch (err.status) {
    case 401:
      return new GitHubAuthError(
        `${at}. Check github.app.id and the private key file (or the PAT in github.token_path), and that this host's clock is right.`,
        401, gh, "config");
    case 403:
      if (/not accessible by integration/i.test(gh)) {
        return new GitHubPermissionError(
          `${at}. The GitHub App lacks the "${fix.permission}" (write) permission: add it in the app settings, then approve it on the installation for ${fix.scopeUrl}.`,
          403, gh, "config");
      }
      return new GitHubPermissionError(`${at}. The credentials may not manage runners for ${fix.scopeUrl}.`, 403, gh, "config");
    case 404:
      return new GitHubNotFoundError(
        `${at}. Check github.url (${fix.scopeUrl}); the GitHub App must be installed there (or the PAT's user must be an admin of it).`,
        404, gh, "config");
    case 422:
      return new GitHubRejectedError(`${at}. Check runner.labels and runner.group; a full runner group needs its offline runners removed.`, 422, gh);
    default:
      return new GitHubUnavailableError(`${at}. GitHub may be having an outage; the slot will back off and retry.`, err.status, gh, "tempfail");
  }
}
