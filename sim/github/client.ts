// Typed client of the sim's control API (/_sim/), for tests, the demo and bench.
import type { IssuedJitConfig } from "./runners.ts";
import type { EnqueueJob, FaultSpec, JobState, Permission, SimSettings, SimState } from "./types.ts";

export type { IssuedJitConfig } from "./runners.ts";
export type { EnqueueJob, FaultSpec, JobState, RunnerState, SimSettings, SimState } from "./types.ts";

export interface SimInfo {
  url: string;
  app: { id: number; clientId: string; privateKeyPem: string; installations: { id: number; account: string; permissions: Record<string, Permission> }[] };
  pat: string;
}

/** A fault whose path may also be a RegExp (sent as `pathRegex`). */
export type FaultInput = Omit<FaultSpec, "path" | "pathRegex"> & { path: string | RegExp };

export class SimControlError extends Error {}

export class GitHubSimClient {
  constructor(readonly url: string) {}

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new SimControlError(`sim/github ${method} ${path} answered ${res.status}: ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  info(): Promise<SimInfo> {
    return this.call("GET", "/_sim/info");
  }

  state(): Promise<SimState> {
    return this.call("GET", "/_sim/state");
  }

  /** The JIT configs generate-jitconfig issued (the last 1000), oldest first. */
  async jitConfigs(): Promise<IssuedJitConfig[]> {
    return (await this.call<{ jit_configs: IssuedJitConfig[] }>("GET", "/_sim/jit-configs")).jit_configs;
  }

  enqueueJob(job: EnqueueJob): Promise<JobState> {
    return this.call("POST", "/_sim/jobs", job);
  }

  job(id: number): Promise<JobState> {
    return this.call("GET", `/_sim/jobs/${id}`);
  }

  async fault({ path, ...rest }: FaultInput): Promise<void> {
    await this.call("POST", "/_sim/faults", path instanceof RegExp ? { ...rest, pathRegex: path.source } : { ...rest, path });
  }

  async clearFaults(): Promise<void> {
    await this.call("DELETE", "/_sim/faults");
  }

  async setClockOffset(offsetMs: number): Promise<void> {
    await this.call("PUT", "/_sim/clock", { offsetMs });
  }

  async setRateLimit(limits: { limit?: number; remaining?: number }): Promise<void> {
    await this.call("PUT", "/_sim/rate-limit", limits);
  }

  /** Changes run-time settings (e.g. `lostRunnerBusyMs`); answers all of them. */
  settings(changes: Partial<SimSettings>): Promise<SimSettings> {
    return this.call("PUT", "/_sim/settings", changes);
  }

  /** GitHub removes an idle runner on its own; 422 while it holds a job. */
  async retireRunner(id: number): Promise<void> {
    await this.call("POST", `/_sim/runners/${id}/retire`);
  }

  /** Revokes the installation tokens issued so far (of one account, or all); answers how many. */
  async revokeTokens(account?: string): Promise<number> {
    return (await this.call<{ revoked: number }>("POST", "/_sim/tokens/revoke", account === undefined ? {} : { account })).revoked;
  }

  async resetRequests(): Promise<void> {
    await this.call("DELETE", "/_sim/requests");
  }

  /** Polls state() until `predicate` holds; throws after `timeoutMs` with the last state. */
  async waitFor(predicate: (s: SimState) => boolean, { timeoutMs = 10_000, intervalMs = 50 } = {}): Promise<SimState> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.state();
      if (predicate(s)) return s;
      if (Date.now() > deadline) {
        throw new SimControlError(`sim/github: condition not met within ${timeoutMs} ms; runners=${JSON.stringify(s.runners)} jobs=${JSON.stringify(s.jobs)}`);
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
}
