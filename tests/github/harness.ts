// Shared by the lib/github tests: the simulated GitHub (real HTTP, in process),
// a config and a client pointed at it with a state directory of their own, a
// logger whose lines the test reads, and an injected clock whose sleeps return
// at once but advance it, so retry waits are asserted without waiting.
import { afterAll, beforeAll, beforeEach } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import type { Config } from "../../lib/config/index.ts";
import { createGitHubClient, type ClientOptions, type GitHubClient } from "../../lib/github/client.ts";
import { createLogger, type Logger } from "../../lib/core/log.ts";
import { GitHubSimClient } from "../../sim/github/client.ts";
import { startGitHub, type GitHubSim, type GitHubSimOptions } from "../../sim/github/server.ts";
import type { SimState } from "../../sim/github/types.ts";

export interface FakeClock {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Every sleep asked for, in ms. */
  waits: number[];
}

/** Starts at `start` (default: the real time, so the sim's token expiry agrees) and moves only when slept on. */
export function fakeClock(start = Date.now()): FakeClock {
  let t = start;
  const waits: number[] = [];
  return {
    now: () => t,
    sleep: async (ms) => {
      waits.push(ms);
      t += ms;
    },
    waits,
  };
}

export interface CapturedLog {
  log: Logger;
  /** Every line written so far, parsed. */
  lines(): Record<string, unknown>[];
  /** Every line written so far, as written. */
  text(): string;
}

export function captureLog(): CapturedLog {
  let out = "";
  const stream = new Writable({
    write(chunk, _enc, done) {
      out += String(chunk);
      done();
    },
  });
  const log = createLogger({ stream, format: "json", verbose: true });
  return {
    log,
    text: () => out,
    lines: () => out.split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface Harness {
  sim: GitHubSim;
  control: GitHubSimClient;
  stop(): Promise<void>;
}

/** One sim for a test file, started before its tests; faults, clock and request counters are reset before each test. */
export function simForFile(opts: GitHubSimOptions = {}): () => Harness {
  let h: Harness | undefined;
  beforeAll(async () => {
    const sim = await startGitHub({ validate: true, ...opts });
    h = { sim, control: new GitHubSimClient(sim.url), stop: () => sim.stop() };
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(async () => {
    await h!.control.clearFaults();
    await h!.control.setClockOffset(0);
    await h!.control.resetRequests();
  });
  return () => h!;
}

export function tempDir(prefix = "gh-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export type GitHubConfig = Config["github"];

/** The `github` config of the sim's org `acme` (or `scope`) with the app (default) or the PAT. */
export function githubConfig(
  sim: GitHubSim,
  o: { dir: string; auth?: "app" | "pat"; installationId?: number; scope?: "org" | "repo" | "enterprise" | undefined },
): GitHubConfig {
  const scope =
    o.scope === "repo"
      ? { url: `${sim.url}/acme/app`, scope: { kind: "repo" as const, owner: "acme", repo: "app" } }
      : o.scope === "enterprise"
        ? { url: `${sim.url}/enterprises/acme-ent`, scope: { kind: "enterprise" as const, enterprise: "acme-ent" } }
        : { url: `${sim.url}/acme`, scope: { kind: "org" as const, org: "acme" } };
  if (o.auth === "pat") {
    const tokenPath = join(o.dir, "pat");
    writeFileSync(tokenPath, `${sim.pat}\n`, { mode: 0o600 });
    return { ...scope, apiUrl: sim.url, auth: { kind: "pat", tokenPath } };
  }
  const privateKeyPath = join(o.dir, "app.pem");
  writeFileSync(privateKeyPath, sim.app.privateKeyPem, { mode: 0o600 });
  return { ...scope, apiUrl: sim.url, auth: { kind: "app", appId: sim.app.id, privateKeyPath, ...(o.installationId !== undefined && { installationId: o.installationId }) } };
}

/** A client as a cycle gets it, on `stateDir`, with the fake clock's now and sleep. */
export function clientFor(github: GitHubConfig, o: { stateDir: string; log: Logger; clock: FakeClock } & Partial<ClientOptions>): GitHubClient {
  const { clock, ...rest } = o;
  return createGitHubClient(github, { ...rest, retry: { now: clock.now, sleep: clock.sleep, ...rest.retry } });
}

/** API calls per endpoint since the last resetRequests(), without the zero entries. */
export function calls(state: SimState): Record<string, number> {
  return Object.fromEntries(Object.entries(state.requests.byEndpoint).filter(([, n]) => n > 0));
}

export const orgInstallationId = (sim: GitHubSim): number => sim.app.installations.find((i) => i.account === "acme")!.id;
