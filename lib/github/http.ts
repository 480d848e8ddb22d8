// The one @octokit/request every GitHub call goes through (a timeout per call, a
// cap on an answer's size, octokit's warnings in our log), and the runner routes
// per scope. Answers are `unknown` until answers.ts checks them.
import { request as octokitRequest } from "@octokit/request";
import type { OctokitResponse } from "@octokit/types";
import type { Scope } from "../config/values.ts";
import { BadInputError } from "../core/errors.ts";
import type { Level, Logger } from "../core/log.ts";

export type Request = typeof octokitRequest;

/** A page of 100 runners is about 60 KB. */
const MAX_BODY_BYTES = 1 << 20;

export function octokitLog(log: Logger) {
  const at = (level: Level) => (...args: unknown[]) => log[level]("github.octokit", args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** `timeoutMs` is per call, answer included. */
export function baseRequest(o: { apiUrl: string; log: Logger; timeoutMs?: number | undefined; maxBodyBytes?: number | undefined }): Request {
  return octokitRequest.defaults({
    baseUrl: o.apiUrl,
    headers: { "user-agent": "macos-runner", "x-github-api-version": "2022-11-28" },
    request: { fetch: boundedFetch(o.timeoutMs ?? 20_000, o.maxBodyBytes ?? MAX_BODY_BYTES), log: octokitLog(o.log) },
  });
}

/** The deadline covers reading the answer; a longer one is a BadInputError (octokit's 500's `cause`). */
function boundedFetch(timeoutMs: number, maxBytes: number) {
  return async (url: string, init: RequestInit): Promise<Response> => {
    const signal = init.signal ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs);
    const res = await fetch(url, { ...init, signal });
    const tooLarge = () => {
      const path = new URL(url).pathname;
      return new BadInputError(
        `GitHub's answer to ${init.method ?? "GET"} ${path} (status ${res.status}) is larger than ${maxBytes} bytes; it was not read. GitHub, or a proxy in front of it, answered something unexpected.`,
      );
    };
    if (Number(res.headers.get("content-length") ?? 0) > maxBytes) {
      await res.body?.cancel();
      throw tooLarge();
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (res.body) {
      for await (const chunk of res.body) {
        size += chunk.byteLength;
        if (size > maxBytes) throw tooLarge(); // leaving the loop cancels the stream
        chunks.push(chunk);
      }
    }
    const nullBody = res.status === 204 || res.status === 205 || res.status === 304;
    return new Response(nullBody ? null : Buffer.concat(chunks), { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

type Answer = Promise<OctokitResponse<unknown>>;

export interface PageQuery {
  per_page: number;
  page: number;
}

export type RunnerRoutes = ReturnType<typeof runnerRoutes>;

/** GHEC gives each enterprise route the org route's parameters and answer; a repository has no runner groups. */
export function runnerRoutes(request: Request, scope: Scope) {
  const [base, params] =
    scope.kind === "org" ? ["/orgs/{org}", { org: scope.org }]
    : scope.kind === "repo" ? ["/repos/{owner}/{repo}", { owner: scope.owner, repo: scope.repo }]
    : ["/enterprises/{enterprise}", { enterprise: scope.enterprise }];
  const call = (method: string, path: string, more: object = {}): Answer => request(`${method} ${base}/actions/${path}`, { ...params, ...more });
  return {
    generateJitConfig: (body: { name: string; runner_group_id: number; labels: string[]; work_folder: string }) => call("POST", "runners/generate-jitconfig", body),
    listRunners: (query: PageQuery & { name?: string }) => call("GET", "runners", query),
    getRunner: (runner_id: number) => call("GET", "runners/{runner_id}", { runner_id }),
    deleteRunner: (runner_id: number) => call("DELETE", "runners/{runner_id}", { runner_id }),
    createRegistrationToken: () => call("POST", "runners/registration-token"),
    listRunnerGroups: scope.kind === "repo" ? undefined : (query: PageQuery) => call("GET", "runner-groups", query),
  };
}

export function installationLookup(appRequest: Request, scope: Exclude<Scope, { kind: "enterprise" }>): Answer {
  return scope.kind === "org"
    ? appRequest("GET /orgs/{org}/installation", { org: scope.org })
    : appRequest("GET /repos/{owner}/{repo}/installation", { owner: scope.owner, repo: scope.repo });
}
