// sim/github: a stateful fake of GitHub's REST API (runners, app auth), the
// runner broker and the /_sim/ control API, on 127.0.0.1.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { ApiError, defaultMessage, errorBody, Router, type Reply } from "./http.ts";
import { loadResponseValidator, type ResponseValidator } from "./openapi.ts";
import { appRoutes } from "./routes/app.ts";
import { brokerRoutes } from "./routes/broker.ts";
import { controlRoutes } from "./routes/control.ts";
import { runnerRoutes } from "./routes/runners.ts";
import { UsageErrorBody } from "./validate-input.ts";
import { World, type Ctx } from "./world.ts";
import type { FaultSpec, GitHubSimOptions, Permission, SimState } from "./types.ts";

export type { GitHubSimOptions } from "./types.ts";

export interface GitHubSim {
  /** Base URL, also the API base URL: http://127.0.0.1:PORT */
  url: string;
  app: {
    id: number;
    clientId: string;
    privateKeyPem: string;
    installations: { id: number; account: string; permissions: Record<string, Permission> }[];
  };
  /** A classic PAT of an admin user, accepted on every runner endpoint. */
  pat: string;
  state(): SimState;
  /** The live world, for in-process tests that need more than state(). */
  world: World;
  stop(): Promise<void>;
}

/** Where a path belongs: the control API, the runner broker, or GitHub's API. */
type Area = "control" | "broker" | "api";

const MAX_BODY_BYTES = 1 << 20;
/** GHES-style clients put the API under /api/v3. */
const GHES_PREFIX = "/api/v3";

const SECONDARY_MESSAGE = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.";

function areaOf(path: string): Area {
  if (path.startsWith("/_sim/")) return "control";
  if (path.startsWith("/_broker/") || path === "/actions/runner-registration") return "broker";
  return "api";
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, "Payload too large");
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError(400, "Problems parsing JSON");
  }
}

function faultReply(world: World, fault: FaultSpec): Reply | undefined {
  const retryAfter: Record<string, string> = fault.retryAfter !== undefined ? { "retry-after": String(fault.retryAfter) } : {};
  if (fault.rateLimited === "primary") {
    return { status: 403, body: errorBody(403, "API rate limit exceeded for installation."), headers: { ...world.rateLimit.headers(true), ...retryAfter } };
  }
  if (fault.rateLimited === "secondary") {
    return { status: 403, body: errorBody(403, SECONDARY_MESSAGE), headers: { "retry-after": String(fault.retryAfter ?? 60) } };
  }
  if (fault.status === undefined) return undefined;
  return { status: fault.status, body: fault.body ?? errorBody(fault.status, defaultMessage(fault.status)), headers: retryAfter };
}

function replyFor(err: unknown): Reply {
  if (err instanceof ApiError) return { status: err.status, body: errorBody(err.status, err.message, err.extra), headers: err.headers };
  if (err instanceof UsageErrorBody) return { status: 400, body: { message: err.message } };
  return { status: 500, body: errorBody(500, `sim/github internal error: ${(err as Error).message}`) };
}

export async function startGitHub(opts: GitHubSimOptions = {}): Promise<GitHubSim> {
  const world = new World(opts);
  const routers: Record<Area, Router<Ctx>> = { control: new Router(), broker: new Router(), api: new Router() };
  controlRoutes(routers.control);
  brokerRoutes(routers.broker);
  appRoutes(routers.api);
  runnerRoutes(routers.api);
  const validator: ResponseValidator | undefined =
    opts.validate === true ? loadResponseValidator(routers.api.operations()) : opts.validate ? opts.validate : undefined;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sim");
    const path = url.pathname.startsWith(`${GHES_PREFIX}/`) ? url.pathname.slice(GHES_PREFIX.length) : url.pathname;
    const method = (req.method ?? "GET").toUpperCase();
    const area = areaOf(path);
    const match = routers[area].match(method, path);
    const template = typeof match === "object" ? match.route.template : undefined;
    if (area === "api") world.count(`${method} ${template ?? path}`, path);

    const aborted = new AbortController();
    res.on("close", () => aborted.abort());

    const fault = area === "control" ? undefined : world.faults.take(method, path, template);

    let reply: Reply;
    try {
      const body = await readBody(req);
      const injected = fault && faultReply(world, fault);
      if (injected) reply = injected;
      else if (area === "api" && !world.rateLimit.spend()) {
        reply = { status: 403, body: errorBody(403, "API rate limit exceeded for installation."), headers: world.rateLimit.headers(true) };
      } else if (typeof match !== "object") throw new ApiError(404, "Not Found");
      else {
        const ctx: Ctx = { world, method, path, query: url.searchParams, headers: req.headers, body, aborted: aborted.signal };
        reply = await match.route.handler(ctx, match.params);
      }
    } catch (err) {
      reply = replyFor(err);
    }

    if (validator && area === "api" && template) {
      world.violations.push(...validator.check(method, template, reply.status, reply.body));
    }
    // Latency holds the answer: what the call did stands even if the client gives up meanwhile.
    if (fault?.latencyMs) await new Promise((r) => setTimeout(r, fault.latencyMs));
    if (aborted.signal.aborted) return;
    if (fault?.drop) {
      req.socket.destroy();
      return;
    }
    const headers: Record<string, string> = {
      date: new Date(world.clock.now()).toUTCString(),
      ...(area === "api" ? { ...world.rateLimit.headers(), "x-github-api-version-selected": "2022-11-28", "x-github-request-id": randomUUID() } : {}),
      ...(reply.body !== undefined ? { "content-type": "application/json; charset=utf-8" } : {}),
      ...reply.headers,
    };
    res.writeHead(reply.status, headers);
    res.end(reply.body !== undefined ? JSON.stringify(reply.body) : undefined);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify(errorBody(500, `sim/github internal error: ${(err as Error).message}`)));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  world.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    ...world.info(),
    world,
    state: () => world.state(),
    async stop() {
      world.broker.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
