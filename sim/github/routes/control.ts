// The control API under /_sim/ (tests, demo, bench); see ../README.md.
import { notFound, type Router } from "../http.ts";
import { asObject, optionalStrings, requireString, UsageErrorBody } from "../validate-input.ts";
import type { Ctx } from "../world.ts";
import type { FaultSpec } from "../types.ts";

function finiteNumber(body: Record<string, unknown>, field: string, where: string): number {
  const value = body[field];
  if (typeof value !== "number" || !Number.isFinite(value)) throw new UsageErrorBody(`${where}: "${field}" must be a number`);
  return value;
}

export function controlRoutes(router: Router<Ctx>): void {
  router
    .add("GET", "/_sim/info", (ctx) => ({ status: 200, body: ctx.world.info() }))
    .add("GET", "/_sim/state", (ctx) => ({ status: 200, body: ctx.world.state() }))
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
    .add("DELETE", "/_sim/requests", (ctx) => {
      ctx.world.requests.total = 0;
      ctx.world.requests.byEndpoint = {};
      return { status: 204 };
    });
}
