// GitHub App routes (JWT-authenticated): find an installation, mint its token.
import { ApiError, notFound, type Router } from "../http.ts";
import type { Ctx } from "../world.ts";
import type { Permission } from "../types.ts";

function installationReply(ctx: Ctx, account: string | undefined) {
  ctx.world.accounts.requireApp(ctx.headers.authorization);
  const installation = account === undefined ? undefined : ctx.world.accounts.installationFor(account);
  if (!installation) throw notFound();
  return { status: 200, body: ctx.world.accounts.installationJson(installation, ctx.world.baseUrl) };
}

function requestedPermissions(body: unknown): Record<string, Permission> | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body !== "object" || Array.isArray(body)) throw new ApiError(422, "Invalid request.\n\nBody must be an object.");
  const permissions = (body as { permissions?: unknown }).permissions;
  if (permissions === undefined) return undefined;
  if (!permissions || typeof permissions !== "object" || !Object.values(permissions).every((v) => v === "read" || v === "write")) {
    throw new ApiError(422, "Invalid request.\n\nInvalid property /permissions: values must be \"read\" or \"write\".");
  }
  return permissions as Record<string, Permission>;
}

export function appRoutes(router: Router<Ctx>): void {
  router
    .add("GET", "/orgs/{org}/installation", (ctx, p) => {
      const isOrg = ctx.world.registry.scope("orgs", p.org!) !== undefined;
      return installationReply(ctx, isOrg ? p.org : undefined);
    })
    .add("GET", "/repos/{owner}/{repo}/installation", (ctx, p) => {
      const repo = ctx.world.registry.scope("repos", `${p.owner}/${p.repo}`);
      return installationReply(ctx, repo ? p.owner : undefined);
    })
    .add("GET", "/users/{username}/installation", (ctx, p) => installationReply(ctx, p.username))
    .add("POST", "/app/installations/{installation_id}/access_tokens", (ctx, p) => {
      const { accounts } = ctx.world;
      accounts.requireApp(ctx.headers.authorization);
      const installation = accounts.installationById(Number(p.installation_id));
      if (!installation) throw notFound();
      const { token, expiresAt, permissions } = accounts.issueToken(installation, requestedPermissions(ctx.body));
      return {
        status: 201,
        body: { token, expires_at: ctx.world.clock.iso(expiresAt), permissions, repository_selection: "all" },
      };
    });
}
