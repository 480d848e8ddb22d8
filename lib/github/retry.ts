// Bounded retries for GitHub calls: 5xx and network errors back off
// exponentially; rate limits wait as retry-after / x-ratelimit-reset say, but
// only up to a cap, beyond which the caller's slot backs off instead.
import { GitHubRateLimitError, githubMessageOf, header, isHttpError, isRateLimited, type HttpErrorLike } from "./errors.ts";

export interface RetryOptions {
  attempts?: number; // total tries for 5xx/network
  baseDelayMs?: number;
  maxRateLimitWaitMs?: number;
  onRetry?: (info: { attempt: number; status: number; waitMs: number; reason: string }) => void;
  now?: () => number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** How long a rate-limited response asks us to wait, in ms. */
export function rateLimitWaitMs(err: HttpErrorLike, now: number): number {
  const retryAfter = Number(header(err, "retry-after"));
  if (Number.isFinite(retryAfter) && retryAfter >= 0) return retryAfter * 1000;
  const reset = Number(header(err, "x-ratelimit-reset"));
  if (header(err, "x-ratelimit-remaining") === "0" && Number.isFinite(reset)) return Math.max(0, reset * 1000 - now);
  return 60_000; // GitHub's advice (and plugin-throttling's fallback) for a secondary limit without retry-after
}

export async function withRetries<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 4;
  const base = opts.baseDelayMs ?? 500;
  const maxWait = opts.maxRateLimitWaitMs ?? 90_000;
  const now = opts.now ?? Date.now;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isHttpError(err)) throw err;
      if (isRateLimited(err)) {
        const waitMs = rateLimitWaitMs(err, now());
        if (waitMs > maxWait || attempt >= attempts) {
          throw new GitHubRateLimitError(
            `GitHub rate limit (${err.status} "${githubMessageOf(err)}"): retry in ${Math.ceil(waitMs / 1000)} s; the slot backs off until then.`,
            err.status, githubMessageOf(err), now() + waitMs);
        }
        opts.onRetry?.({ attempt, status: err.status, waitMs, reason: "rate limited" });
        await sleep(waitMs);
        continue;
      }
      const transient = err.status >= 500 || err.status === 0;
      if (!transient || attempt >= attempts) throw err;
      const waitMs = Math.round(base * 2 ** (attempt - 1) * (0.75 + Math.random() / 2));
      opts.onRetry?.({ attempt, status: err.status, waitMs, reason: err.status >= 500 ? `server error ${err.status}` : "network error" });
      await sleep(waitMs);
    }
  }
}
