// The self-hosted runner endpoints macos-runner uses, for any scope.
import type { GitHubClient } from "./client.ts";
import { explain, GitHubError, isHttpError } from "./errors.ts";
import { withRetries, type RetryOptions } from "./retry.ts";

export interface Runner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels: { name: string }[];
}

export interface JitConfig {
  runner: Runner;
  encodedJitConfig: string;
}


async function call<T>(gh: GitHubClient, where: string, fn: () => Promise<T>, retry?: RetryOptions): Promise<T> {
  try {
    return await withRetries(fn, retry);
  } catch (err) {
    if (isHttpError(err) && !(err instanceof GitHubError)) {
      throw explain(err, where, { permission: gh.permission, scopeUrl: gh.scopeUrl });
    }
    throw err;
  }
}

/** The Default group is id 1 at every scope; other names cost one lookup. */
export async function runnerGroupId(gh: GitHubClient, group: string, retry?: RetryOptions): Promise<number> {
  if (group === "Default") return 1;
  if (gh.actionsPrefix.startsWith("/repos/")) {
    throw new Error(`runner.group "${group}": repository runners can only use the Default group`);
  }
  const groups = await call(gh, `listing runner groups of ${gh.scopeUrl}`, async () => {
    const { data } = await gh.request(`GET ${gh.actionsPrefix}/runner-groups`, { per_page: 100 });
    return (data as { runner_groups: { id: number; name: string }[] }).runner_groups;
  }, retry);
  const found = groups.find((g) => g.name === group);
  if (!found) {
    throw new Error(`runner.group "${group}" does not exist in ${gh.scopeUrl} (groups: ${groups.map((g) => g.name).join(", ")})`);
  }
  return found.id;
}

/**
 * One JIT config (1 API call). A 409 means the name is taken, which for our
 * random names only happens when a retried POST had already succeeded: the
 * caller picks a new name (contracts/github.md §5 pitfall 3).
 */
export async function generateJitConfig(
  gh: GitHubClient,
  body: { name: string; runnerGroupId: number; labels: string[]; workFolder: string },
  retry?: RetryOptions,
): Promise<JitConfig> {
  return call(gh, `creating JIT runner ${body.name} in ${gh.scopeUrl}`, async () => {
    const { data } = await gh.request(`POST ${gh.actionsPrefix}/runners/generate-jitconfig`, {
      name: body.name,
      runner_group_id: body.runnerGroupId,
      labels: body.labels,
      work_folder: body.workFolder,
    });
    const d = data as { runner: Runner; encoded_jit_config: string };
    return { runner: d.runner, encodedJitConfig: d.encoded_jit_config };
  }, retry);
}

export async function createRegistrationToken(gh: GitHubClient, retry?: RetryOptions): Promise<{ token: string; expiresAt: string }> {
  return call(gh, `creating a registration token for ${gh.scopeUrl}`, async () => {
    const { data } = await gh.request(`POST ${gh.actionsPrefix}/runners/registration-token`);
    const d = data as { token: string; expires_at: string };
    return { token: d.token, expiresAt: d.expires_at };
  }, retry);
}

export async function findRunnerByName(gh: GitHubClient, name: string, retry?: RetryOptions): Promise<Runner | undefined> {
  return call(gh, `looking up runner ${name}`, async () => {
    const { data } = await gh.request(`GET ${gh.actionsPrefix}/runners`, { name, per_page: 100 });
    return (data as { runners: Runner[] }).runners.find((r) => r.name === name);
  }, retry);
}

export async function listRunners(gh: GitHubClient, retry?: RetryOptions): Promise<Runner[]> {
  return call(gh, `listing runners of ${gh.scopeUrl}`, async () => {
    const all: Runner[] = [];
    for (let page = 1; ; page++) {
      const { data } = await gh.request(`GET ${gh.actionsPrefix}/runners`, { per_page: 100, page });
      const runners = (data as { runners: Runner[] }).runners;
      all.push(...runners);
      if (runners.length < 100) return all;
    }
  }, retry);
}

export type DeleteOutcome = "deleted" | "gone" | "busy";

/** Deletes a runner; an unknown id is already gone, a busy runner (422) is reported, not thrown. */
export async function deleteRunner(gh: GitHubClient, id: number, retry?: RetryOptions): Promise<DeleteOutcome> {
  try {
    await withRetries(() => gh.request(`DELETE ${gh.actionsPrefix}/runners/{runner_id}`, { runner_id: id }), retry);
    return "deleted";
  } catch (err) {
    if (isHttpError(err) && err.status === 404) return "gone";
    if (isHttpError(err) && err.status === 422) return "busy";
    if (isHttpError(err) && !(err instanceof GitHubError)) {
      throw explain(err, `deleting runner ${id} from ${gh.scopeUrl}`, { permission: gh.permission, scopeUrl: gh.scopeUrl });
    }
    throw err;
  }
}

/** One runner by id; undefined when GitHub no longer has it. */
export async function getRunner(gh: GitHubClient, id: number, retry?: RetryOptions): Promise<Runner | undefined> {
  try {
    return await withRetries(async () => (await gh.request(`GET ${gh.actionsPrefix}/runners/{runner_id}`, { runner_id: id })).data as Runner, retry);
  } catch (err) {
    if (isHttpError(err) && err.status === 404) return undefined;
    if (isHttpError(err) && !(err instanceof GitHubError)) {
      throw explain(err, `looking up runner ${id} in ${gh.scopeUrl}`, { permission: gh.permission, scopeUrl: gh.scopeUrl });
    }
    throw err;
  }
}
