// Is the golden image's actions runner fresh enough? GitHub stops sending jobs to
// a runner 30 days after the release that superseded it (a self-updating runner
// downloads ~200 MB every job), so the check finds that release.
import { MacosRunnerError } from "../core/errors.ts";

export const WARN_DAYS = 14;
/** Fail from here: 5 days left to build, push and roll out a new image. */
export const ERROR_DAYS = 25;
const DAY_MS = 86_400_000;

export type Verdict = "current" | "ok" | "warn" | "error";

export interface RunnerFreshness {
  imageVersion: string;
  latestVersion: string;
  supersededBy?: { version: string; publishedAt: string };
  daysBehind: number;
  verdict: Verdict;
  message: string;
}

interface Release {
  tag_name: string;
  published_at: string | null;
  draft?: boolean;
  prerelease?: boolean;
}

export class RunnerCheckError extends MacosRunnerError {}

/** "v2.325.0" or "2.325.0" -> [2, 325, 0]. */
export function parseVersion(v: string): number[] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(v.trim());
  return m ? m.slice(1).map(Number) : undefined;
}

export function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

export async function checkRunnerFreshness(o: { imageVersion: string; releasesUrl: string; now?: number; timeoutMs?: number }): Promise<RunnerFreshness> {
  const image = parseVersion(o.imageVersion);
  if (!image) throw new RunnerCheckError(`the image's runner version ${JSON.stringify(o.imageVersion)} is not a version like 2.325.0`, { kind: "bad-input" });
  const now = o.now ?? Date.now();
  const timeoutMs = o.timeoutMs ?? 30_000;
  const base = o.releasesUrl.replace(/\/+$/, "");

  const latest = await getJson<Release>(`${base}/latest`, timeoutMs);
  const latestVersion = versionOf(latest);
  if (compareVersions(image, latestVersion) >= 0) {
    return { imageVersion: o.imageVersion, latestVersion: latest.tag_name, daysBehind: 0, verdict: "current", message: `runner ${o.imageVersion} is the latest release` };
  }
  const releases = await getJson<Release[]>(`${base}?per_page=100`, timeoutMs);
  if (!Array.isArray(releases)) throw new RunnerCheckError(`${base} did not answer a list of releases`, { kind: "bad-input" });
  const newer = releases
    .filter((r) => !r.draft && !r.prerelease && r.published_at && parseVersion(r.tag_name) && compareVersions(parseVersion(r.tag_name)!, image) > 0)
    .sort((a, b) => compareVersions(parseVersion(a.tag_name)!, parseVersion(b.tag_name)!));
  // A very old image's successor is off the page: the latest is a generous lower bound.
  const successor = newer[0] ?? latest;
  const publishedAt = successor.published_at ?? new Date(now).toISOString();
  const daysBehind = Math.max(0, Math.floor((now - Date.parse(publishedAt)) / DAY_MS));
  const verdict: Verdict = daysBehind >= ERROR_DAYS ? "error" : daysBehind >= WARN_DAYS ? "warn" : "ok";
  const since = `runner ${o.imageVersion} was superseded by ${successor.tag_name} ${daysBehind} day(s) ago (latest ${latest.tag_name})`;
  const advice = {
    ok: "; fine for now",
    warn: `; rebuild and push the image: GitHub stops sending jobs 30 days after the superseding release`,
    error: `; rebuild and push the image now: from day 30 GitHub sends this runner no jobs`,
  }[verdict];
  return {
    imageVersion: o.imageVersion,
    latestVersion: latest.tag_name,
    supersededBy: { version: successor.tag_name, publishedAt },
    daysBehind,
    verdict,
    message: `${since}${advice}`,
  };
}

function versionOf(r: Release): number[] {
  const v = typeof r?.tag_name === "string" ? parseVersion(r.tag_name) : undefined;
  if (!v) throw new RunnerCheckError(`the latest actions/runner release has no version tag (got ${JSON.stringify(r?.tag_name)})`, { kind: "bad-input" });
  return v;
}

async function getJson<T>(url: string, timeoutMs: number): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { Accept: "application/vnd.github+json" }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new RunnerCheckError(`cannot reach ${url} (${(err as Error).message}); try again later`, { kind: "tempfail" });
  }
  if (res.status === 403 || res.status === 429 || res.status >= 500) {
    await res.body?.cancel();
    throw new RunnerCheckError(`${url} answered ${res.status} (rate limited or unavailable); try again later`, { kind: "tempfail" });
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new RunnerCheckError(`${url} answered ${res.status}; check image.runner_releases_url`, { kind: "config" });
  }
  try {
    return (await res.json()) as T;
  } catch {
    throw new RunnerCheckError(`${url} did not answer JSON`, { kind: "bad-input" });
  }
}
