#!/usr/bin/env bun
// pull: keeps the golden image fresh, run by its own launchd agent on an interval.
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { loadConfig } from "../lib/config/index.ts";
import { exitCode } from "../lib/core/errors.ts";
import { createLogger } from "../lib/core/log.ts";
import { isDigest, parseImageRef } from "../lib/image/oci-ref.ts";
import { checkPinnedRunner, pullStatus, rollbackPin, updatePin, withPullLock, type PullContext } from "../lib/image/pull.ts";
import { registryFor, tartFor } from "../lib/slot/context.ts";

export const spec = {
  name: "pull",
  summary: "pull the golden image's new digest into tart's cache, pin it for the slots (image.lock), prune old ones",
  options: {
    status: { type: "boolean", description: "print the pinned, previous, available and cached digests, change nothing" },
    rollback: { type: "boolean", description: "pin the previous image again; the tag's digest is not re-pinned until the tag moves" },
    "runner-check": { type: "boolean", description: "compare the image's actions runner with the latest release: warn from 14 days behind, fail from 25" },
    json: { type: "boolean", description: "with --status or --runner-check: print one JSON object" },
  },
  exits: {
    failure: "--rollback without a previous image; --runner-check: the runner is 25+ days behind (GitHub cuts it off at 30)",
    "bad-input": "the registry served an image whose digest does not match, or tart or the registry answered something unexpected",
    unavailable: "less free disk than the floor (image.min_free_gb, default disk size + 20 GB), or tart is not installed",
    "state-io": "image.lock or the pull lock cannot be written",
    tempfail: "the registry (or GitHub, for --runner-check) is unreachable or failing, or another pull is running",
    config: "config invalid, the registry refused the credentials, or the tag does not exist",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number | void> {
  const config = loadConfig({ path: common.config });
  const log = createLogger({ verbose: common.verbose, fields: { phase: "pull" } });
  const ref = config.image.ref;
  const repo = parseImageRef(ref);
  if (!repo || isDigest(repo.reference)) {
    const why = repo ? "names a digest itself, so it is pinned by the config" : "is a local VM name (no registry)";
    log.info("pull.nothing", `image.ref ${ref} ${why}: nothing to pull or pin`);
    if (values.status) print(values.json, { ref, pinned: null, note: why }, `image.ref   ${ref}\n            ${why}; nothing to pull or pin\n`);
    return exitCode("ok");
  }
  const ctx: PullContext = { config, repo, tart: tartFor(config), registry: registryFor(config, repo), log };
  if (values.status) {
    const { report, text } = await pullStatus(ctx);
    print(values.json, report, text);
    return exitCode("ok");
  }
  if (values["runner-check"]) {
    const r = await checkPinnedRunner(ctx);
    print(values.json, r, `${r.message}\n`);
    return r.verdict === "error" ? exitCode("failure") : exitCode("ok");
  }
  await withPullLock(config.host.stateDir, () => (values.rollback ? rollbackPin(ctx) : updatePin(ctx)));
  return exitCode("ok");
}

function print(json: boolean | undefined, report: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : text);
}

if (import.meta.main) await runCli(spec, main);
