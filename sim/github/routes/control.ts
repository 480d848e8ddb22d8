// The control API under /_sim/ (tests, demo, bench); see ../README.md.
import { notFound, type Router } from "../http.ts";
import { asObject, optionalStrings, requireString, UsageErrorBody } from "../validate-input.ts";
import type { Ctx } from "../world.ts";
import { DEFAULT_SETTINGS, type FaultSpec, type SimSettings } from "../types.ts";

function finiteNumber(body: Record<string, unknown>, field: string, where: string): number {
  const value = body[field];
  if (typeof value !== "number" || !Number.isFinite(value)) throw new UsageErrorBody(`${where}: "${field}" must be a number`);
  return value;
}

const SETTING_NAMES = Object.keys(DEFAULT_SETTINGS) as (keyof SimSettings)[];

export function controlRoutes(router: Router<Ctx>): void {
  router
    .add("GET", "/_sim/info", (ctx) => ({ status: 200, body: ctx.world.info() }))
    .add("GET", "/_sim/state", (ctx) => ({ status: 200, body: ctx.world.state() }))
    .add("GET", "/_sim/jit-configs", (ctx) => ({ status: 200, body: { jit_configs: ctx.world.registry.issuedJitConfigs } }))
    .add("POST", "/_sim/jobs", (ctx) => {
      const body = asObject(ctx.body, "enqueue job");
      const job = ctx.world.broker.enqueue({
        name: requireString(body, "name", "enqueue job"),
        labels: optionalStrings(body, "labels", "enqueue job"),
        script: requireString(body, "script", "enqueue job"),
      });
      return { status: 201, body: job };
    })
    .add("GET", "/_sim/jobs/{id}", (ctx, p) => {
      const job = ctx.world.broker.jobs.find((j) => j.id === Number(p.id));
      if (!job) throw notFound();
      return { status: 200, body: job };
    })
    .add("POST", "/_sim/faults", (ctx) => {
      ctx.world.faults.add(asObject(ctx.body, "fault") as FaultSpec);
      return { status: 201, body: {} };
    })
    .add("DELETE", "/_sim/faults", (ctx) => {
      ctx.world.faults.clear();
      return { status: 204 };
    })
    .add("PUT", "/_sim/clock", (ctx) => {
      ctx.world.clock.offsetMs = finiteNumber(asObject(ctx.body, "clock"), "offsetMs", "clock");
      return { status: 200, body: { offsetMs: ctx.world.clock.offsetMs } };
    })
    .add("PUT", "/_sim/rate-limit", (ctx) => {
      const body = asObject(ctx.body, "rate-limit");
      const { rateLimit } = ctx.world;
      if (body.limit !== undefined) rateLimit.limit = finiteNumber(body, "limit", "rate-limit");
      if (body.remaining !== undefined) rateLimit.used = Math.max(0, rateLimit.limit - finiteNumber(body, "remaining", "rate-limit"));
      return { status: 200, body: { limit: rateLimit.limit, remaining: rateLimit.limit - rateLimit.used } };
    })
    .add("PUT", "/_sim/settings", (ctx) => {
      const body = asObject(ctx.body, "settings");
      const unknown = Object.keys(body).filter((k) => !SETTING_NAMES.includes(k as keyof SimSettings));
      if (unknown.length) throw new UsageErrorBody(`settings: unknown "${unknown[0]}" (known: ${SETTING_NAMES.join(", ")})`);
      const changes: Partial<SimSettings> = {};
      for (const name of SETTING_NAMES) {
        if (body[name] === undefined) continue;
        const value = finiteNumber(body, name, "settings");
        if (value < 0) throw new UsageErrorBody(`settings: "${name}" must not be negative`);
        changes[name] = value;
      }
      const { broker } = ctx.world;
      Object.assign(broker.settings, changes);
      broker.settingsChanged();
      return { status: 200, body: broker.settings };
    })
    .add("POST", "/_sim/runners/{id}/retire", (ctx, p) => {
      const runner = ctx.world.registry.runners.get(Number(p.id));
      if (!runner) throw notFound();
      ctx.world.broker.retire(runner);
      return { status: 204 };
    })
    .add("POST", "/_sim/tokens/revoke", (ctx) => {
      const body = ctx.body === undefined ? {} : asObject(ctx.body, "revoke tokens");
      if (body.account !== undefined && typeof body.account !== "string") throw new UsageErrorBody('revoke tokens: "account" must be a string');
      return { status: 200, body: { revoked: ctx.world.accounts.revokeTokens(body.account as string | undefined) } };
    })
    .add("DELETE", "/_sim/requests", (ctx) => {
      ctx.world.requests.total = 0;
      ctx.world.requests.byEndpoint = {};
      ctx.world.requests.byAccount = {};
      return { status: 204 };
    });
}
