// Everything the sim knows, in one place the routes share.
import type { IncomingHttpHeaders } from "node:http";
import { Accounts } from "./accounts.ts";
import { Broker } from "./broker.ts";
import { Clock } from "./clock.ts";
import { Faults } from "./faults.ts";
import { RateLimit } from "./ratelimit.ts";
import { Registry } from "./runners.ts";
import type { SimInfo } from "./client.ts";
import { DEFAULT_SETTINGS, type GitHubSimOptions, type SimState } from "./types.ts";

export class World {
  readonly clock: Clock;
  readonly accounts: Accounts;
  readonly registry: Registry;
  readonly broker: Broker;
  readonly faults = new Faults();
  readonly rateLimit: RateLimit;
  readonly requests = { total: 0, byEndpoint: {} as Record<string, number>, byAccount: {} as Record<string, Record<string, number>> };
  readonly violations: string[] = [];
  /** Set once the server listens. */
  baseUrl = "";

  constructor(opts: GitHubSimOptions = {}) {
    const orgs = opts.orgs ?? ["acme"];
    const repos = opts.repos ?? ["acme/app"];
    const enterprises = opts.enterprises ?? ["acme-ent"];
    const users = [...new Set(repos.map((r) => r.split("/")[0]!).filter((owner) => !orgs.includes(owner)))];
    for (const repo of repos) {
      if (!/^[^/]+\/[^/]+$/.test(repo)) throw new Error(`sim/github: repo "${repo}" must be "owner/name"`);
    }
    this.clock = new Clock(opts.clockOffsetMs ?? 0);
    this.accounts = new Accounts(this.clock, orgs, users, opts.installations, opts.tokenTtlMs ?? 3_600_000);
    this.registry = new Registry(this.clock, { orgs, repos, enterprises, extraGroups: opts.runnerGroups ?? [] }, opts.groupCapacity ?? 10_000);
    const settings = {
      lostRunnerBusyMs: opts.lostRunnerBusyMs ?? DEFAULT_SETTINGS.lostRunnerBusyMs,
      assignDelayMs: opts.assignDelayMs ?? DEFAULT_SETTINGS.assignDelayMs,
      idleJitRunnerRetireMs: opts.idleJitRunnerRetireMs ?? DEFAULT_SETTINGS.idleJitRunnerRetireMs,
    };
    this.broker = new Broker(this.registry, this.clock, opts.sessionLeaseMs ?? 10_000, settings);
    this.rateLimit = new RateLimit(this.clock, opts.rateLimit ?? 5000);
  }

  /** Counts a GitHub API call, overall and for the account (org, repo owner, enterprise) it concerns. */
  count(endpoint: string, path: string): void {
    this.requests.total++;
    this.requests.byEndpoint[endpoint] = (this.requests.byEndpoint[endpoint] ?? 0) + 1;
    const account = this.accountOf(path);
    if (account === undefined) return;
    const counts = (this.requests.byAccount[account] ??= {});
    counts[endpoint] = (counts[endpoint] ?? 0) + 1;
  }

  private accountOf(path: string): string | undefined {
    const scoped = /^\/(?:orgs|repos|enterprises|users)\/([^/]+)/.exec(path);
    if (scoped) return scoped[1]!.toLowerCase();
    const installation = /^\/app\/installations\/(\d+)\//.exec(path);
    return installation ? this.accounts.installations.find((i) => i.id === Number(installation[1]))?.account.toLowerCase() : undefined;
  }

  /** What a client needs to talk to the sim: its URL, the app's credentials, the PAT. */
  info(): SimInfo {
    const { accounts } = this;
    return {
      url: this.baseUrl,
      app: {
        id: accounts.app.id,
        clientId: accounts.app.clientId,
        privateKeyPem: accounts.app.privateKeyPem,
        installations: accounts.installations.map((i) => ({ id: i.id, account: i.account, permissions: i.permissions })),
      },
      pat: accounts.pat,
    };
  }

  state(): SimState {
    return structuredClone({
      runners: [...this.registry.runners.values()].map((r) => Registry.state(r)),
      jobs: this.broker.jobs,
      events: this.broker.events,
      requests: this.requests,
      violations: this.violations,
      clockOffsetMs: this.clock.offsetMs,
      settings: this.broker.settings,
    });
  }
}

/** One request as the route handlers see it. */
export interface Ctx {
  world: World;
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** Fires when the client goes away (ends long-polls). */
  aborted: AbortSignal;
}
