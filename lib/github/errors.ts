// GitHub failures a user can act on, each with what to fix and a bounded excerpt
// of GitHub's answer (never request headers: they hold tokens), and bounded retries.
import { excerpt, MacosRunnerError, type ExitKind } from "../core/errors.ts";
import { sleep as realSleep } from "../core/wait.ts";

export interface HttpErrorLike {
  status: number;
  message: string;
  response?: { headers: Record<string, string | number | undefined>; data?: unknown };
  request?: { method?: string; url?: string };
  cause?: unknown;
  /** What was already done to recover (a dropped cache entry), for the message. */
  tried?: string;
}

export class GitHubError extends MacosRunnerError {
  constructor(message: string, readonly status: number, readonly githubMessage: string, kind: ExitKind = "failure") {
    super(message, { kind });
  }
}

/** 401: wrong app id or key, a clock off by minutes, or a revoked PAT. */
export class GitHubAuthError extends GitHubError {}
/** 403 "Resource not accessible by integration": the app lacks a permission. */
export class GitHubPermissionError extends GitHubError {}
/** 404 on installation or runner endpoints: app not installed, wrong URL, or PAT user not an admin. */
export class GitHubNotFoundError extends GitHubError {}
/** Its reset is further away than we wait in-process. */
export class GitHubRateLimitError extends GitHubError {
  constructor(message: string, status: number, githubMessage: string, readonly retryAtMs: number) {
    super(message, status, githubMessage, "tempfail");
  }
}
/** 5xx or network failure that outlasted our retries. */
export class GitHubUnavailableError extends GitHubError {}
/** 422 from generate-jitconfig: group full or bad labels/group. */
export class GitHubRejectedError extends GitHubError {}

export function isHttpError(err: unknown): err is HttpErrorLike {
  return typeof (err as HttpErrorLike | undefined)?.status === "number";
}

export function githubMessageOf(err: HttpErrorLike): string {
  const data = err.response?.data;
  if (typeof (data as { message?: unknown } | undefined)?.message === "string") return excerpt((data as { message: string }).message, 300);
  if (typeof data === "string" && data.trim() !== "") return excerpt(data);
  return excerpt(err.message);
}

export function header(err: HttpErrorLike, name: string): string | undefined {
  const v = err.response?.headers?.[name];
  return v === undefined ? undefined : String(v);
}

export function isRateLimited(err: HttpErrorLike): boolean {
  if (err.status !== 403 && err.status !== 429) return false;
  return header(err, "x-ratelimit-remaining") === "0" || header(err, "retry-after") !== undefined || /\bsecondary rate\b/i.test(githubMessageOf(err));
}

/** 422 on DELETE of a runner that holds a job: `Bad request - Runner "X" is still running a job`. */
export function isBusyRunner(err: HttpErrorLike): boolean {
  return err.status === 422 && /still running a job/i.test(githubMessageOf(err));
}

/** octokit reports no answer at all as a 500 without a response, the fetch error as `cause`. */
export function networkFailure(err: HttpErrorLike): string | undefined {
  if (err instanceof MacosRunnerError || err.response !== undefined || err.status !== 500) return undefined;
  const cause = (err.cause ?? err) as { name?: unknown; code?: unknown; message?: unknown };
  const name = typeof cause.code === "string" ? cause.code : typeof cause.name === "string" ? cause.name : "error";
  return excerpt(`${name}: ${typeof cause.message === "string" ? cause.message : String(cause)}`, 160);
}

/** `POST /orgs/acme/actions/runners/generate-jitconfig`, without the base URL or query. */
function requestLine(err: HttpErrorLike): string | undefined {
  const { method, url } = err.request ?? {};
  if (!method || !url) return undefined;
  try {
    return `${method} ${new URL(url).pathname}`;
  } catch {
    return `${method} ${url.split("?")[0]}`;
  }
}

export function explain(err: HttpErrorLike, where: string, fix: { permission: string; scopeUrl: string }): GitHubError {
  const line = requestLine(err);
  const network = networkFailure(err);
  const gh = network ?? githubMessageOf(err);
  const said = network ? `got no answer (${network})` : `GitHub said ${err.status} "${gh}"`;
  const at = `${where}${line ? ` (${line})` : ""}: ${said}${err.tried ? `; ${err.tried}` : ""}`;
  if (network) return new GitHubUnavailableError(`${at}. GitHub or the network is unreachable; the slot will back off and retry.`, err.status, gh, "tempfail");
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
    case 409:
      return new GitHubError(`${at}. A runner with that name already exists.`, 409, gh);
    case 422:
      return new GitHubRejectedError(`${at}. Check runner.labels and runner.group; a full runner group needs its offline runners removed.`, 422, gh);
    default:
      if (err.status < 500) return new GitHubError(`${at}. GitHub refused the call.`, err.status, gh);
      return new GitHubUnavailableError(`${at}. GitHub may be having an outage; the slot will back off and retry.`, err.status, gh, "tempfail");
  }
}

export interface RetryInfo {
  attempt: number;
  /** The HTTP status, 0 when no answer came (network error). */
  status: number;
  waitMs: number;
  reason: string;
}

export interface RetryOptions {
  attempts?: number;
  /** Doubled each time, ±25 % jitter. */
  baseDelayMs?: number;
  /** Longer waits throw GitHubRateLimitError. */
  maxRateLimitWaitMs?: number;
  onRetry?: (info: RetryInfo) => void;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** GitHub's advice (and plugin-throttling's fallback) for a secondary limit without retry-after. */
const SECONDARY_FALLBACK_MS = 60_000;

export function rateLimitWaitMs(err: HttpErrorLike, now: number): number {
  const retryAfter = Number(header(err, "retry-after") ?? Number.NaN);
  if (Number.isFinite(retryAfter) && retryAfter >= 0) return retryAfter * 1000;
  const reset = Number(header(err, "x-ratelimit-reset") ?? Number.NaN);
  if (header(err, "x-ratelimit-remaining") === "0" && Number.isFinite(reset)) return Math.max(0, reset * 1000 - now);
  return SECONDARY_FALLBACK_MS;
}

export async function withRetries<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 4;
  const base = opts.baseDelayMs ?? 500;
  const maxWait = opts.maxRateLimitWaitMs ?? 90_000;
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? realSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      // Our own verdict raised inside fetch (an answer over the size cap) arrives as octokit's 500 with it as cause.
      const cause = (err as { cause?: unknown } | undefined)?.cause;
      if (cause instanceof MacosRunnerError) throw cause;
      if (!isHttpError(err)) throw err;
      if (isRateLimited(err)) {
        const waitMs = rateLimitWaitMs(err, now());
        const kind = header(err, "x-ratelimit-remaining") === "0" ? "primary" : "secondary";
        if (waitMs > maxWait || attempt >= attempts) {
          throw new GitHubRateLimitError(
            `GitHub ${kind} rate limit (${err.status} "${githubMessageOf(err)}"): retry in ${Math.ceil(waitMs / 1000)} s; the slot backs off until then.`,
            err.status, githubMessageOf(err), now() + waitMs);
        }
        opts.onRetry?.({ attempt, status: err.status, waitMs, reason: `rate limited (${kind})` });
        await sleep(waitMs);
        continue;
      }
      const network = networkFailure(err);
      if ((network === undefined && err.status < 500) || attempt >= attempts) throw err;
      const waitMs = Math.round(base * 2 ** (attempt - 1) * (0.75 + Math.random() / 2));
      opts.onRetry?.({
        attempt,
        status: network === undefined ? err.status : 0,
        waitMs,
        reason: network === undefined ? `server error ${err.status}` : `network error (${network})`,
      });
      await sleep(waitMs);
    }
  }
}
