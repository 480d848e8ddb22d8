// The JIT runner config for a slot's VM (1 API call in steady state).
import type { Config } from "../config/index.ts";
import { githubFor, type GitHubClient } from "../github/client.ts";
import { GitHubError, type RetryInfo } from "../github/errors.ts";
import { deleteRunner, findRunnerByName, generateJitConfig, type JitConfig } from "../github/runners.ts";
import type { Logger } from "../core/log.ts";
import type { SlotNames } from "../config/names.ts";

interface TokenOptions {
  config: Config;
  names: SlotNames;
  name: string;
  log: Logger;
  gh?: GitHubClient;
  /** Records each name before its runner is created, so a crash mid-call still knows it. */
  beforeCreate?: (name: string) => void;
}

/** A 409 (name taken) can only be an earlier attempt of ours whose answer we lost: that runner is removed, a new name used. */
export async function token(o: TokenOptions): Promise<JitConfig> {
  const gh = o.gh ?? githubFor(o.config, o.log);
  const { runner } = o.config;
  const retry = {
    onRetry: (i: RetryInfo) => o.log.warn("token.retry", `GitHub ${i.reason}; retrying in ${i.waitMs} ms`, { phase: "token", status: i.status, attempt: i.attempt, wait_ms: i.waitMs }),
  };
  const done = o.log.time("token.done", { phase: "token" });
  let name = o.name;
  for (let attempt = 1; ; attempt++) {
    try {
      o.beforeCreate?.(name);
      const jit = await generateJitConfig(gh, { name, group: runner.group, labels: runner.labels, workFolder: runner.workFolder }, retry);
      done("JIT runner created", { runner: jit.runner.name, runner_id: jit.runner.id });
      return jit;
    } catch (err) {
      if (!(err instanceof GitHubError) || err.status !== 409 || attempt > 1) throw err;
      o.log.warn("token.name_taken", `runner name ${name} already exists; removing it and using a new name`, { phase: "token", runner: name });
      const stale = await findRunnerByName(gh, name, retry);
      if (stale && o.names.owns(stale.name)) await deleteRunner(gh, stale.id, retry);
      name = o.names.next();
    }
  }
}
