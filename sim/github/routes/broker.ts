// What only the fake actions runner calls: config.sh's registration
// (`/actions/runner-registration` + `/_broker/agents`) and the job broker
// (`/_broker/sessions`, `/_broker/jobs`), see sim/PROTOCOL.md.
import { ApiError, type Reply, type Router } from "../http.ts";
import { Registry, type Runner, type Scope } from "../runners.ts";
import type { Ctx } from "../world.ts";
import type { JobResult } from "../types.ts";

/** Longest long-poll the broker holds open. */
const MAX_WAIT_MS = 60_000;
const RESULTS: JobResult[] = ["Succeeded", "Failed", "Canceled"];

function bearer(ctx: Ctx): string {
  return /^bearer\s+(\S+)$/i.exec(ctx.headers.authorization ?? "")?.[1] ?? "";
}

/** The runner whose OAuth secret authenticates the call; 404 once it was deleted. */
function runnerOf(ctx: Ctx): Runner {
  const runner = ctx.world.registry.runnerBySecret(bearer(ctx));
  if (runner === "gone") throw new ApiError(404, "The runner no longer exists on the server.");
  if (!runner) throw new ApiError(401, "Bad credentials");
  return runner;
}

function pipelineScope(ctx: Ctx): Scope {
  const scope = ctx.world.registry.redeemRunnerToken(bearer(ctx), "pipeline");
  if (!scope) throw new ApiError(401, "Bad credentials");
  return scope;
}

function field<T>(body: unknown, name: string, check: (v: unknown) => boolean, what: string): T {
  const value = (body as Record<string, unknown> | undefined)?.[name];
  if (!check(value)) throw new ApiError(400, `"${name}" must be ${what}`);
  return value as T;
}

const isString = (v: unknown) => typeof v === "string";
const isBool = (v: unknown) => v === undefined || typeof v === "boolean";

export function brokerRoutes(router: Router<Ctx>): void {
  router
    .add("POST", "/actions/runner-registration", (ctx) => {
      const token = /^RemoteAuth\s+(\S+)$/i.exec(ctx.headers.authorization ?? "")?.[1] ?? "";
      const url = field<string>(ctx.body, "url", isString, "a string");
      const event = field<string>(ctx.body, "runner_event", (v) => v === "register" || v === "remove", '"register" or "remove"');
      const registry = ctx.world.registry;
      const scope = registry.redeemRunnerToken(token, event === "register" ? "registration" : "remove");
      if (!scope || registry.scopeFromUrl(url) !== scope) throw new ApiError(404, "Not Found");
      return { status: 200, body: { url: ctx.world.baseUrl, token: registry.issueRunnerToken(scope, "pipeline").token, token_schema: "OAuthAccessToken" } };
    })
    .add("POST", "/_broker/agents", (ctx): Reply => {
      const scope = pipelineScope(ctx);
      const name = field<string>(ctx.body, "name", (v) => typeof v === "string" && v !== "", "a non-empty string");
      const labels = field<string[]>(ctx.body, "labels", (v) => Array.isArray(v) && v.every(isString), "an array of strings");
      const groupName = field<string | undefined>(ctx.body, "runner_group", (v) => v === undefined || isString(v), "a string");
      const workFolder = field<string | undefined>(ctx.body, "work_folder", (v) => v === undefined || isString(v), "a string");
      const ephemeral = field<boolean | undefined>(ctx.body, "ephemeral", isBool, "a boolean");
      const replace = field<boolean | undefined>(ctx.body, "replace", isBool, "a boolean");
      const group = groupName ? scope.groups.find((g) => g.name.toLowerCase() === groupName.toLowerCase()) : scope.groups.find((g) => g.default);
      if (!group) throw new ApiError(404, `Could not find any self-hosted runner group named "${groupName}".`);
      if (!replace && ctx.world.registry.byName(scope, name)) throw new ApiError(409, `A runner exists with the same name ${name}.`);
      const registry = ctx.world.registry;
      const replaced = registry.byName(scope, name);
      if (replaced) ctx.world.broker.removeRunner(replaced);
      const runner = registry.create(scope, { name, groupId: group.id, labels, ephemeral: ephemeral ?? false, workFolder: workFolder ?? "_work" });
      return { status: 201, body: { runner: Registry.json(runner), replaced: Boolean(replaced), files: registry.configFiles(runner, ctx.world.baseUrl) } };
    })
    .add("DELETE", "/_broker/agents/{runner_id}", (ctx, p): Reply => {
      const scope = pipelineScope(ctx);
      const runner = ctx.world.registry.runner(scope, Number(p.runner_id));
      if (runner.busy) throw new ApiError(422, `Bad request - Runner "${runner.name}" is still running a job`);
      ctx.world.broker.removeRunner(runner);
      return { status: 204 };
    })
    .add("POST", "/_broker/sessions", (ctx) => {
      const runner = runnerOf(ctx);
      const id = field<number>(ctx.body, "runner_id", Number.isInteger, "an integer");
      if (id !== runner.id) throw new ApiError(401, "Bad credentials");
      const os = field<string | undefined>(ctx.body, "os", (v) => v === undefined || isString(v), "a string");
      const version = field<string | undefined>(ctx.body, "version", (v) => v === undefined || isString(v), "a string");
      const session = ctx.world.broker.open(runner, { os, version });
      return { status: 201, body: { session_id: session.id, lease_ms: ctx.world.broker.leaseMs } };
    })
    .add("GET", "/_broker/sessions/{session_id}/job", async (ctx, p): Promise<Reply> => {
      const runner = runnerOf(ctx);
      const session = ctx.world.broker.session(p.session_id!, runner);
      const waitMs = Math.min(MAX_WAIT_MS, Math.max(0, Number(ctx.query.get("wait_ms") ?? 0) || 0));
      const outcome = await ctx.world.broker.poll(session, waitMs, ctx.aborted);
      if (outcome === "timeout") return { status: 204 };
      if (outcome === "gone") {
        runnerOf(ctx); // 404 when the runner itself was deleted
        throw new ApiError(410, "The session has expired.");
      }
      return { status: 200, body: { job: { id: outcome.id, name: outcome.name, script: outcome.script } } };
    })
    .add("POST", "/_broker/sessions/{session_id}/heartbeat", (ctx, p) => {
      ctx.world.broker.session(p.session_id!, runnerOf(ctx));
      return { status: 204 };
    })
    .add("DELETE", "/_broker/sessions/{session_id}", (ctx, p) => {
      const broker = ctx.world.broker;
      broker.close(broker.session(p.session_id!, runnerOf(ctx)));
      return { status: 204 };
    })
    .add("POST", "/_broker/jobs/{job_id}/result", (ctx, p) => {
      const runner = runnerOf(ctx);
      const broker = ctx.world.broker;
      const session = broker.sessionOf(runner);
      if (!session) throw new ApiError(410, "The session has expired.");
      broker.complete(session, Number(p.job_id), {
        result: field<JobResult>(ctx.body, "result", (v) => RESULTS.includes(v as JobResult), RESULTS.join(", ")),
        exit_code: field<number>(ctx.body, "exit_code", Number.isInteger, "an integer"),
        output: field<string>(ctx.body, "output", isString, "a string"),
      });
      return { status: 204 };
    });
}
