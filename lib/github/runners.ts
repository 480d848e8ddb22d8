// The self-hosted runner calls, for any scope: retried, answers checked, failures
// explained; and the JIT runner config for a slot's VM (1 API call in steady state).
import type { Config } from "../config/index.ts";
import type { SlotNames } from "../config/names.ts";
import { BadInputError, MacosRunnerError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { registerSecret } from "../core/redact.ts";
import { registerJitConfig } from "./jit-config.ts";
import { answers, type ExpiringToken, type JitConfig, type Runner } from "./answers.ts";
import { githubFor, type GitHubClient } from "./client.ts";
import { explain, GitHubError, githubMessageOf, GitHubNotFoundError, GitHubRejectedError, isBusyRunner, isHttpError, type HttpErrorLike, type RetryInfo, type RetryOptions, withRetries } from "./errors.ts";
import type { PageQuery } from "./http.ts";

export type { JitConfig, Runner } from "./answers.ts";

const PER_PAGE = 100;
/** GitHub's cap of 10,000 runners per group: past it, something answers wrongly. */
const MAX_PAGES = 100;

/** `answered` turns a refusal GitHub gave into a result (a 404 that means gone); any other is explained. */
async function call<T>(gh: GitHubClient, where: string, fn: () => Promise<T>, retry?: RetryOptions, answered?: (err: HttpErrorLike) => T | undefined): Promise<T> {
  try {
    return await withRetries(fn, { ...gh.retry, ...retry });
  } catch (err) {
    if (!isHttpError(err) || err instanceof MacosRunnerError) throw err;
    const result = answered?.(err);
    if (result !== undefined) return result;
    throw explain(err, where, gh);
  }
}

/** Follows `Link: rel="next"`, or without a Link header pages until a short one. */
async function allPages<T>(
  gh: GitHubClient,
  where: string,
  page: (q: PageQuery) => Promise<{ data: unknown; headers: Record<string, unknown> }>,
  read: (where: string, data: unknown) => T[],
  retry?: RetryOptions,
): Promise<T[]> {
  const all: T[] = [];
  for (let n = 1; n <= MAX_PAGES; n++) {
    const { data, headers } = await call(gh, where, () => page({ per_page: PER_PAGE, page: n }), retry);
    const items = read(where, data);
    all.push(...items);
    const more = typeof headers.link === "string" ? /rel="next"/.test(headers.link) : items.length === PER_PAGE;
    if (!more) return all;
  }
  throw new BadInputError(`${where}: GitHub still had more after ${MAX_PAGES} pages of ${PER_PAGE}, more than a runner group can hold; stopped reading.`);
}

/** Default is 1 at every scope; another name is looked up once and cached on disk. */
export async function runnerGroupId(gh: GitHubClient, group: string, retry?: RetryOptions): Promise<number> {
  if (group === "Default") return 1;
  const cached = gh.groupIds.get(group);
  if (cached !== undefined) return cached;
  const list = gh.routes.listRunnerGroups;
  if (!list) throw new MacosRunnerError(`runner.group "${group}": repository runners can only use the Default group`, { kind: "config" });
  const groups = await allPages(gh, `listing runner groups of ${gh.scopeUrl}`, list, answers.groupPage, retry);
  const found = groups.find((g) => g.name === group);
  if (!found) {
    throw new MacosRunnerError(`runner.group "${group}" does not exist in ${gh.scopeUrl} (groups: ${groups.map((g) => g.name).join(", ")})`, { kind: "config" });
  }
  gh.groupIds.set(group, found.id);
  return found.id;
}

/**
 * A 409 (name taken) means a retried POST had already succeeded: the caller picks
 * a new name. A 404 with a cached group id looks the group up again, once (it was recreated).
 */
export async function generateJitConfig(
  gh: GitHubClient,
  body: { name: string; group: string; labels: string[]; workFolder: string },
  retry?: RetryOptions,
): Promise<JitConfig> {
  const where = `creating JIT runner ${body.name} in ${gh.scopeUrl}`;
  const create = async (runnerGroupId: number) => {
    const { data } = await call(gh, where, () =>
      gh.routes.generateJitConfig({ name: body.name, runner_group_id: runnerGroupId, labels: body.labels, work_folder: body.workFolder }), retry);
    const jit = answers.jitConfig(where, data);
    registerJitConfig(jit.encodedJitConfig);
    return jit;
  };
  const cachedGroup = body.group !== "Default" && gh.groupIds.get(body.group) !== undefined;
  const groupId = await runnerGroupId(gh, body.group, retry);
  try {
    return await create(groupId);
  } catch (err) {
    if (!(cachedGroup && err instanceof GitHubNotFoundError)) throw err;
  }
  gh.log.warn("github.group_stale", `the cached id ${groupId} of runner group "${body.group}" answered 404; dropping it and looking the group up again`);
  gh.groupIds.delete(body.group);
  const fresh = await runnerGroupId(gh, body.group, retry);
  try {
    return await create(fresh);
  } catch (err) {
    if (!(err instanceof GitHubNotFoundError)) throw err;
    throw new GitHubNotFoundError(`${err.message} (The cached id ${groupId} of runner group "${body.group}" had answered 404 too; it was dropped and the group looked up again: ${fresh}.)`, 404, err.githubMessage, "config");
  }
}

export async function createRegistrationToken(gh: GitHubClient, retry?: RetryOptions): Promise<ExpiringToken> {
  const where = `creating a registration token for ${gh.scopeUrl}`;
  const { data } = await call(gh, where, () => gh.routes.createRegistrationToken(), retry);
  const token = answers.expiringToken(where, data);
  registerSecret(token.token);
  return token;
}

/** `?name=` matches whole names. */
export async function findRunnerByName(gh: GitHubClient, name: string, retry?: RetryOptions): Promise<Runner | undefined> {
  const where = `looking up runner ${name} in ${gh.scopeUrl}`;
  const runners = await allPages(gh, where, (q) => gh.routes.listRunners({ name, ...q }), answers.runnerPage, retry);
  return runners.find((r) => r.name === name);
}

export async function listRunners(gh: GitHubClient, o: { namePrefix: string }, retry?: RetryOptions): Promise<Runner[]> {
  const where = `listing runners of ${gh.scopeUrl}`;
  const runners = await allPages(gh, where, (q) => gh.routes.listRunners(q), answers.runnerPage, retry);
  return runners.filter((r) => r.name.startsWith(o.namePrefix));
}

export type DeleteOutcome = "deleted" | "gone" | "busy";

/** A runner holding a job (422 "still running a job") is busy. */
export async function deleteRunner(gh: GitHubClient, id: number, retry?: RetryOptions): Promise<DeleteOutcome> {
  const where = `deleting runner ${id} from ${gh.scopeUrl}`;
  const deleted = async (): Promise<DeleteOutcome> => {
    await gh.routes.deleteRunner(id);
    return "deleted";
  };
  return call(gh, where, deleted, retry, (err) => {
    if (err.status === 404) return "gone";
    if (isBusyRunner(err)) return "busy";
    if (err.status !== 422) return undefined;
    throw new GitHubRejectedError(`${where}: GitHub said 422 "${githubMessageOf(err)}", which is not the busy-runner answer; the runner was not removed.`, 422, githubMessageOf(err));
  });
}

export async function getRunner(gh: GitHubClient, id: number, retry?: RetryOptions): Promise<Runner | undefined> {
  const where = `looking up runner ${id} in ${gh.scopeUrl}`;
  const runner = await call(gh, where, async () => answers.runner(where, (await gh.routes.getRunner(id)).data), retry, (err) => (err.status === 404 ? null : undefined));
  return runner ?? undefined;
}

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
