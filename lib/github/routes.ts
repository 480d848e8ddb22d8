// The endpoints we call, per scope, as literal routes: @octokit/request types
// each one's parameters and answer from @octokit/types' Endpoints. Answers are
// handed on as `unknown`, to be checked by answers.ts before use.
import type { Endpoints, OctokitResponse } from "@octokit/types";
import type { Scope } from "../config/values.ts";
import type { Request } from "./http.ts";

type Answer = Promise<OctokitResponse<unknown>>;

export interface JitRequest {
  name: string;
  runner_group_id: number;
  labels: string[];
  work_folder: string;
}

export interface PageQuery {
  per_page: number;
  page: number;
}

export interface RunnerRoutes {
  generateJitConfig(body: JitRequest): Answer;
  listRunners(query: PageQuery & { name?: string }): Answer;
  getRunner(runnerId: number): Answer;
  deleteRunner(runnerId: number): Answer;
  createRegistrationToken(): Answer;
  /** Absent for a repository, which has no runner groups. */
  listRunnerGroups?: (query: PageQuery) => Answer;
}

export function runnerRoutes(request: Request, scope: Scope): RunnerRoutes {
  switch (scope.kind) {
    case "org": {
      const { org } = scope;
      return {
        generateJitConfig: (body) => request("POST /orgs/{org}/actions/runners/generate-jitconfig", { org, ...body }),
        listRunners: (query) => request("GET /orgs/{org}/actions/runners", { org, ...query }),
        getRunner: (runner_id) => request("GET /orgs/{org}/actions/runners/{runner_id}", { org, runner_id }),
        deleteRunner: (runner_id) => request("DELETE /orgs/{org}/actions/runners/{runner_id}", { org, runner_id }),
        createRegistrationToken: () => request("POST /orgs/{org}/actions/runners/registration-token", { org }),
        listRunnerGroups: (query) => request("GET /orgs/{org}/actions/runner-groups", { org, ...query }),
      };
    }
    case "repo": {
      const { owner, repo } = scope;
      return {
        generateJitConfig: (body) => request("POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig", { owner, repo, ...body }),
        listRunners: (query) => request("GET /repos/{owner}/{repo}/actions/runners", { owner, repo, ...query }),
        getRunner: (runner_id) => request("GET /repos/{owner}/{repo}/actions/runners/{runner_id}", { owner, repo, runner_id }),
        deleteRunner: (runner_id) => request("DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}", { owner, repo, runner_id }),
        createRegistrationToken: () => request("POST /repos/{owner}/{repo}/actions/runners/registration-token", { owner, repo }),
      };
    }
    case "enterprise": {
      const at = <R extends OrgRoute>(route: R, params: Omit<Endpoints[R]["parameters"], "org">) =>
        enterpriseTwin(request, route, scope.enterprise, params);
      return {
        generateJitConfig: (body) => at("POST /orgs/{org}/actions/runners/generate-jitconfig", body),
        listRunners: (query) => at("GET /orgs/{org}/actions/runners", query),
        getRunner: (runner_id) => at("GET /orgs/{org}/actions/runners/{runner_id}", { runner_id }),
        deleteRunner: (runner_id) => at("DELETE /orgs/{org}/actions/runners/{runner_id}", { runner_id }),
        createRegistrationToken: () => at("POST /orgs/{org}/actions/runners/registration-token", {}),
        listRunnerGroups: (query) => at("GET /orgs/{org}/actions/runner-groups", query),
      };
    }
  }
}

type OrgRoute = Extract<keyof Endpoints, `${string} /orgs/{org}/actions/${string}`>;

/**
 * The enterprise endpoint twin of an org route. @octokit/types is generated
 * from api.github.com's description, which has no enterprise runner routes;
 * GHEC's gives each the org route's parameters and answer with {enterprise}
 * in place of {org}. So the parameters are checked against the org route's
 * types and the path is derived from it.
 */
function enterpriseTwin<R extends OrgRoute>(request: Request, route: R, enterprise: string, params: Omit<Endpoints[R]["parameters"], "org">): Answer {
  const twin: string = route.replace("/orgs/{org}/", "/enterprises/{enterprise}/");
  return request(twin, { enterprise, ...params });
}

/** The app-authenticated lookup of the installation on the configured org or repository. */
export function installationLookup(appRequest: Request, scope: Exclude<Scope, { kind: "enterprise" }>): Answer {
  return scope.kind === "org"
    ? appRequest("GET /orgs/{org}/installation", { org: scope.org })
    : appRequest("GET /repos/{owner}/{repo}/installation", { owner: scope.owner, repo: scope.repo });
}
