// Self-hosted runner REST routes at org, repo and enterprise scope.
import { ApiError, notFound, type Reply, type Router } from "../http.ts";
import { Registry, type Scope } from "../runners.ts";
import type { Ctx } from "../world.ts";
import type { ScopeKind } from "../types.ts";

const PREFIXES: { kind: ScopeKind; prefix: string; name: (p: Record<string, string>) => string }[] = [
  { kind: "orgs", prefix: "/orgs/{org}", name: (p) => p.org! },
  { kind: "repos", prefix: "/repos/{owner}/{repo}", name: (p) => `${p.owner}/${p.repo}` },
  { kind: "enterprises", prefix: "/enterprises/{enterprise}", name: (p) => p.enterprise! },
];

/** The app permission each scope's runner routes need. */
const PERMISSION: Record<ScopeKind, string | undefined> = {
  orgs: "organization_self_hosted_runners",
  repos: "administration",
  enterprises: undefined, // enabledForGitHubApps: false
};

const NOT_ACCESSIBLE = "Resource not accessible by integration";

/** The scope named by the path, after checking the caller may act on it. */
function authorize(ctx: Ctx, kind: ScopeKind, name: string, write: boolean): Scope {
  const caller = ctx.world.accounts.caller(ctx.headers.authorization);
  const scope = ctx.world.registry.scope(kind, name);
  if (!scope) throw notFound();
  if (caller.kind === "pat") return scope;
  const owner = kind === "repos" ? name.split("/")[0]! : name;
  if (kind !== "enterprises" && caller.installation.account.toLowerCase() !== owner.toLowerCase()) {
    throw kind === "repos" ? notFound() : new ApiError(403, NOT_ACCESSIBLE);
  }
  const permission = PERMISSION[kind];
  const granted = permission ? caller.permissions[permission] : undefined;
  if (!granted || (write && granted !== "write")) {
    throw new ApiError(403, NOT_ACCESSIBLE, permission ? { "x-accepted-github-permissions": `${permission}=${write ? "write" : "read"}` } : {});
  }
  return scope;
}

function invalid(detail: string): ApiError {
  return new ApiError(422, `Invalid request.\n\n${detail}`);
}

interface JitRequest {
  name: string;
  runner_group_id: number;
  labels: string[];
  work_folder: string;
}

function parseJitRequest(body: unknown): JitRequest {
  if (!body || typeof body !== "object" || Array.isArray(body)) throw invalid("Body must be a JSON object.");
  const b = body as Record<string, unknown>;
  for (const field of ["name", "runner_group_id", "labels"]) {
    if (b[field] === undefined) throw invalid(`"${field}" wasn't supplied.`);
  }
  if (typeof b.name !== "string" || b.name === "") throw invalid("Invalid property /name: must be a non-empty string.");
  if (!Number.isInteger(b.runner_group_id)) throw invalid(`Invalid property /runner_group_id: \`${JSON.stringify(b.runner_group_id)}\` is not of type \`integer\`.`);
  const labels = b.labels;
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === "string" && l !== "")) {
    throw invalid("Invalid property /labels: must be an array of non-empty strings.");
  }
  if (labels.length < 1 || labels.length > 100) throw invalid(`Invalid property /labels: must have 1 to 100 items, got ${labels.length}.`);
  if (b.work_folder !== undefined && typeof b.work_folder !== "string") throw invalid("Invalid property /work_folder: must be a string.");
  return { name: b.name, runner_group_id: b.runner_group_id as number, labels: labels as string[], work_folder: (b.work_folder as string | undefined) ?? "_work" };
}

function positiveInt(raw: string | null, fallback: number, name: string): number {
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw invalid(`Invalid property /${name}: \`${raw}\` is not a positive integer.`);
  return n;
}

/** One page of `items` plus GitHub's `Link` header. */
function paginate<T>(ctx: Ctx, items: T[]): { page: T[]; headers: Record<string, string> } {
  const perPage = Math.min(100, positiveInt(ctx.query.get("per_page"), 30, "per_page"));
  const page = positiveInt(ctx.query.get("page"), 1, "page");
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const link = (n: number, rel: string) => {
    const q = new URLSearchParams(ctx.query);
    q.set("per_page", String(perPage));
    q.set("page", String(n));
    return `<${ctx.world.baseUrl}${ctx.path}?${q}>; rel="${rel}"`;
  };
  const links = [
    ...(page > 1 ? [link(page - 1, "prev")] : []),
    ...(page < last ? [link(page + 1, "next"), link(last, "last")] : []),
    ...(page > 1 ? [link(1, "first")] : []),
  ];
  return { page: items.slice((page - 1) * perPage, page * perPage), headers: links.length ? { link: links.join(", ") } : {} };
}

function runnerId(raw: string): number {
  const id = Number(raw);
  if (!Number.isInteger(id) || id < 1) throw notFound();
  return id;
}

export function runnerRoutes(router: Router<Ctx>): void {
  for (const { kind, prefix, name } of PREFIXES) {
    const base = `${prefix}/actions/runners`;
    router
      .add("POST", `${base}/registration-token`, (ctx, p) => {
        const scope = authorize(ctx, kind, name(p), true);
        return { status: 201, body: ctx.world.registry.issueRunnerToken(scope, "registration") };
      })
      .add("POST", `${base}/remove-token`, (ctx, p) => {
        const scope = authorize(ctx, kind, name(p), true);
        return { status: 201, body: ctx.world.registry.issueRunnerToken(scope, "remove") };
      })
      .add("POST", `${base}/generate-jitconfig`, (ctx, p) => {
        const scope = authorize(ctx, kind, name(p), true);
        const req = parseJitRequest(ctx.body);
        const runner = ctx.world.registry.create(scope, {
          name: req.name,
          groupId: req.runner_group_id,
          labels: req.labels,
          ephemeral: true,
          jit: true,
          workFolder: req.work_folder,
        });
        return {
          status: 201,
          body: { runner: Registry.json(runner), encoded_jit_config: ctx.world.registry.encodedJitConfig(runner, ctx.world.baseUrl) },
        };
      })
      .add("GET", base, (ctx, p): Reply => {
        const scope = authorize(ctx, kind, name(p), false);
        const wanted = ctx.query.get("name");
        const all = ctx.world.registry.inScope(scope).filter((r) => wanted === null || r.name.toLowerCase() === wanted.toLowerCase());
        const { page, headers } = paginate(ctx, all);
        return { status: 200, body: { total_count: all.length, runners: page.map((r) => Registry.json(r)) }, headers };
      })
      .add("GET", `${base}/{runner_id}`, (ctx, p) => {
        const scope = authorize(ctx, kind, name(p), false);
        return { status: 200, body: Registry.json(ctx.world.registry.runner(scope, runnerId(p.runner_id!))) };
      })
      .add("GET", `${base}/{runner_id}/labels`, (ctx, p) => {
        const scope = authorize(ctx, kind, name(p), false);
        const runner = ctx.world.registry.runner(scope, runnerId(p.runner_id!));
        return { status: 200, body: { total_count: runner.labels.length, labels: runner.labels } };
      })
      .add("DELETE", `${base}/{runner_id}`, (ctx, p) => {
        const scope = authorize(ctx, kind, name(p), true);
        const runner = ctx.world.registry.runner(scope, runnerId(p.runner_id!));
        if (runner.busy) throw new ApiError(422, `Bad request - Runner "${runner.name}" is still running a job`);
        ctx.world.broker.removeRunner(runner);
        return { status: 204 };
      });
    if (kind === "repos") continue; // no repo-level runner-groups endpoint
    router.add("GET", `${prefix}/actions/runner-groups`, (ctx, p): Reply => {
      const scope = authorize(ctx, kind, name(p), false);
      const groups = scope.groups.map((g) => ({
        id: g.id,
        name: g.name,
        visibility: "all",
        default: g.default,
        runners_url: `${ctx.world.baseUrl}/${scope.key}/actions/runner-groups/${g.id}/runners`,
        inherited: false,
        allows_public_repositories: false,
        restricted_to_workflows: false,
        selected_workflows: [],
        workflow_restrictions_read_only: false,
      }));
      const { page, headers } = paginate(ctx, groups);
      return { status: 200, body: { total_count: groups.length, runner_groups: page }, headers };
    });
  }
}
