// GitHub sends no jobs to a runner more than 30 days behind the newest
// release (contracts/github.md §7.7), so the version baked into the image
// ages even when nothing changes: compare it with actions/runner's releases.
import { inspectImageLock } from "../../image/pin.ts";
import { fail, pass, skip, warn, withDeadline, type CheckResult, type DoctorContext } from "./types.ts";

const DAY_MS = 86_400_000;
const GRACE_DAYS = 30;
const WARN_DAYS = 7;
const REBUILD = "rebuild the golden image with the latest actions/runner and publish it";

export async function runnerVersionCheck(ctx: DoctorContext): Promise<CheckResult[]> {
  const { config } = ctx;
  if (!config) return [skip("runner-version", "config invalid")];
  const { lock } = inspectImageLock(config.host.stateDir);
  if (!lock?.runner_version) return [skip("runner-version", "the image records no runner version (image.lock runner_version)")];
  const ours = lock.runner_version.replace(/^v/, "");
  let releases: { tag_name: string; published_at: string }[];
  try {
    const res = await withDeadline(ctx.timeoutMs, "GitHub releases", (signal) =>
      fetch(`${config.github.apiUrl}/repos/actions/runner/releases?per_page=100`, { headers: { accept: "application/vnd.github+json", "user-agent": "macos-runner-doctor" }, signal }));
    if (res.status !== 200) return [warn("runner-version", `runner ${ours}; the latest release could not be read (${res.status})`, "compare with https://github.com/actions/runner/releases by hand")];
    releases = (await res.json()) as typeof releases;
  } catch (err) {
    return [warn("runner-version", `runner ${ours}; the latest release could not be read (${(err as Error).message})`, "compare with https://github.com/actions/runner/releases by hand")];
  }
  const newer = releases.filter((r) => compareVersions(r.tag_name.replace(/^v/, ""), ours) > 0).sort((a, b) => Date.parse(a.published_at) - Date.parse(b.published_at));
  if (newer.length === 0) return [pass("runner-version", `runner ${ours} is the latest release`)];
  const first = newer[0]!;
  const latest = newer.at(-1)!;
  const cutoff = Date.parse(first.published_at) + GRACE_DAYS * DAY_MS;
  const days = Math.floor((cutoff - Date.now()) / DAY_MS);
  const found = `runner ${ours}; ${latest.tag_name} is the latest, ${first.tag_name} came out ${first.published_at.slice(0, 10)}`;
  if (days < 0) return [fail("runner-version", `${found}: more than ${GRACE_DAYS} days behind, GitHub sends it no jobs`, REBUILD)];
  if (days < WARN_DAYS) return [warn("runner-version", `${found}: GitHub stops sending it jobs in ${days} day(s)`, REBUILD)];
  return [pass("runner-version", `${found}; ${days} days before it is too old`)];
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}
