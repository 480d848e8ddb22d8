// Bounded retries for GitHub calls: 5xx and network errors back off
// exponentially; rate limits wait as retry-after / x-ratelimit-reset say, but
// only up to a cap, beyond which the caller's slot backs off instead.
import { MacosRunnerError } from "../core/errors.ts";
import { GitHubRateLimitError, githubMessageOf, header, isHttpError, isRateLimited, networkFailure, type HttpErrorLike } from "./errors.ts";

export interface RetryInfo {
  attempt: number;
  /** The HTTP status, 0 when no answer came (network error). */
  status: number;
  waitMs: number;
  reason: string;
}

export interface RetryOptions {
  /** Total tries for 5xx, network errors and rate limits (default 4). */
  attempts?: number;
  /** First backoff after a 5xx or network error, doubled each time, ±25 % jitter (default 500 ms). */
  baseDelayMs?: number;
  /** The longest rate-limit wait taken in-process (default 90 s); longer ones throw GitHubRateLimitError. */
  maxRateLimitWaitMs?: number;
  onRetry?: (info: RetryInfo) => void;
  /** Clock and sleep, injected by tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** GitHub's advice (and plugin-throttling's fallback) for a secondary limit without retry-after. */
const SECONDARY_FALLBACK_MS = 60_000;

/** How long a rate-limited response asks us to wait, in ms. */
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
