// Runner registry: scopes (org, repo, enterprise), their runner groups, the
// runners registered in them and the short-lived registration/remove tokens.
import { randomBytes, randomUUID } from "node:crypto";
import { ApiError, notFound } from "./http.ts";
import type { Clock } from "./clock.ts";
import { randomString, runnerToken } from "./secrets.ts";
import type { RunnerLabel, RunnerState, ScopeKind } from "./types.ts";

export interface Group {
  id: number;
  name: string;
  default: boolean;
}

export interface Scope {
  kind: ScopeKind;
  /** "acme", "acme/app" or "acme-ent". */
  name: string;
  /** "orgs/acme", "repos/acme/app", "enterprises/acme-ent". */
  key: string;
  groups: Group[];
}

export interface Runner {
  id: number;
  name: string;
  scope: Scope;
  groupId: number;
  labels: RunnerLabel[];
  os: string;
  busy: boolean;
  online: boolean;
  ephemeral: boolean;
  /** Made by generate-jitconfig (GitHub removes such runners when they stay idle). */
  jit: boolean;
  /** Host time of registration. */
  registeredAt: number;
  version: string | null;
  workFolder: string;
  /** The runner's OAuth secret; the broker checks it as `Authorization: Bearer`. */
  secret: string;
}

export interface NewRunner {
  name: string;
  groupId: number;
  labels: string[];
  ephemeral: boolean;
  jit?: boolean;
  workFolder: string;
  /** config.sh --replace: take over a same-name runner instead of failing. */
  replace?: boolean;
}

/** Registration/remove tokens (REST), and the pipeline token config.sh gets for them. */
export type RunnerTokenKind = "registration" | "remove" | "pipeline";

/** Labels GitHub marks read-only: self-hosted, OS and architecture. */
const READ_ONLY_LABELS = new Set(["self-hosted", "macos", "linux", "windows", "x64", "arm64", "arm", "x86"]);
const HOUR_MS = 3_600_000;
/** How many issued JIT configs the control API keeps (newest last). */
const ISSUED_JIT_CONFIGS = 1000;

/** A JIT config as generate-jitconfig answered it, kept for tests and the soak's secret scan. */
export interface IssuedJitConfig {
  runner_id: number;
  runner_name: string;
  encoded_jit_config: string;
}

export class Registry {
  readonly scopes = new Map<string, Scope>();
  readonly runners = new Map<number, Runner>();
  private readonly labelIds = new Map<string, number>();
  private readonly runnerTokens = new Map<string, { scope: Scope; kind: RunnerTokenKind; expiresAt: number }>();
  /** Secrets of deleted runners: the broker answers them 404 (gone), not 401. */
  private readonly retiredSecrets = new Set<string>();
  private nextRunnerId = 1;

  constructor(
    private readonly clock: Clock,
    names: { orgs: string[]; repos: string[]; enterprises: string[]; extraGroups: string[] },
    private readonly groupCapacity: number,
  ) {
    const groups = (): Group[] => [
      { id: 1, name: "Default", default: true },
      ...names.extraGroups.map((name, i) => ({ id: i + 2, name, default: false })),
    ];
    for (const name of names.orgs) this.addScope("orgs", name, groups());
    for (const name of names.repos) this.addScope("repos", name, [{ id: 1, name: "Default", default: true }]);
    for (const name of names.enterprises) this.addScope("enterprises", name, groups());
  }

  private addScope(kind: ScopeKind, name: string, groups: Group[]): void {
    const key = `${kind}/${name}`;
    this.scopes.set(key.toLowerCase(), { kind, name, key, groups });
  }

  scope(kind: ScopeKind, name: string): Scope | undefined {
    return this.scopes.get(`${kind}/${name}`.toLowerCase());
  }

  /** The scope a config.sh `--url` names: `…/acme`, `…/acme/app` or `…/enterprises/acme-ent`. */
  scopeFromUrl(url: string): Scope | undefined {
    let parts: string[];
    try {
      parts = new URL(url).pathname.split("/").filter(Boolean);
    } catch {
      return undefined;
    }
    if (parts[0] === "enterprises" && parts.length === 2) return this.scope("enterprises", parts[1]!);
    if (parts.length === 1) return this.scope("orgs", parts[0]!);
    if (parts.length === 2) return this.scope("repos", `${parts[0]}/${parts[1]}`);
    return undefined;
  }

  /** Path of the scope on github.com, as in `.runner`'s gitHubUrl. */
  static webPath(scope: Scope): string {
    return scope.kind === "enterprises" ? `enterprises/${scope.name}` : scope.name;
  }

  label(name: string): RunnerLabel {
    const key = name.toLowerCase();
    let id = this.labelIds.get(key);
    if (id === undefined) {
      id = this.labelIds.size + 1;
      this.labelIds.set(key, id);
    }
    return { id, name, type: READ_ONLY_LABELS.has(key) ? "read-only" : "custom" };
  }

  inScope(scope: Scope): Runner[] {
    return [...this.runners.values()].filter((r) => r.scope === scope);
  }

  byName(scope: Scope, name: string): Runner | undefined {
    return this.inScope(scope).find((r) => r.name.toLowerCase() === name.toLowerCase());
  }

  runner(scope: Scope, id: number): Runner {
    const runner = this.runners.get(id);
    if (!runner || runner.scope !== scope) throw notFound();
    return runner;
  }

  /** Registers a runner; 404 unknown group, 409 duplicate name, 422 group full. */
  create(scope: Scope, spec: NewRunner): Runner {
    const group = scope.groups.find((g) => g.id === spec.groupId);
    if (!group) throw notFound();
    const existing = this.byName(scope, spec.name);
    if (existing && !spec.replace) {
      throw new ApiError(409, `Already exists - A runner with the name ${spec.name} already exists.`);
    }
    if (existing) this.delete(existing);
    const inGroup = this.inScope(scope).filter((r) => r.groupId === group.id).length;
    if (inGroup >= this.groupCapacity) {
      throw new ApiError(422, `Invalid Argument - Runner group ${group.id} has reached max limit of ${this.groupCapacity} runners.`);
    }
    const seen = new Set<string>();
    const labels = spec.labels.filter((l) => !seen.has(l.toLowerCase()) && seen.add(l.toLowerCase())).map((l) => this.label(l));
    const runner: Runner = {
      id: this.nextRunnerId++,
      name: spec.name,
      scope,
      groupId: group.id,
      labels,
      os: "unknown",
      busy: false,
      online: false,
      ephemeral: spec.ephemeral,
      jit: spec.jit ?? false,
      registeredAt: performance.now(),
      version: null,
      workFolder: spec.workFolder,
      secret: randomString(40),
    };
    this.runners.set(runner.id, runner);
    return runner;
  }

  /** The spec's `runner` object. */
  static json(r: Runner): Record<string, unknown> {
    return {
      id: r.id,
      name: r.name,
      os: r.os,
      status: r.online ? "online" : "offline",
      busy: r.busy,
      ephemeral: r.ephemeral,
      runner_group_id: r.groupId,
      labels: r.labels,
      ...(r.version ? { version: r.version } : {}),
    };
  }

  static state(r: Runner): RunnerState {
    return {
      id: r.id,
      name: r.name,
      scope: r.scope.key,
      runner_group_id: r.groupId,
      os: r.os,
      status: r.online ? "online" : "offline",
      busy: r.busy,
      ephemeral: r.ephemeral,
      labels: r.labels,
      version: r.version,
    };
  }

  issueRunnerToken(scope: Scope, kind: RunnerTokenKind): { token: string; expires_at: string } {
    const token = runnerToken();
    const expiresAt = this.clock.now() + HOUR_MS;
    this.runnerTokens.set(token, { scope, kind, expiresAt });
    return { token, expires_at: this.clock.iso(expiresAt) };
  }

  /** The scope a registration/remove token was issued for, if it is valid and of that kind. */
  redeemRunnerToken(token: string, kind: RunnerTokenKind): Scope | undefined {
    const entry = this.runnerTokens.get(token);
    if (!entry || entry.kind !== kind || entry.expiresAt <= this.clock.now()) return undefined;
    return entry.scope;
  }

  /** The runner's config files, keyed by file name, as the real runner writes them. */
  configFiles(r: Runner, baseUrl: string): Record<string, unknown> {
    const group = r.scope.groups.find((g) => g.id === r.groupId)!;
    return {
      ".runner": {
        agentId: r.id,
        agentName: r.name,
        poolId: group.id,
        poolName: group.name,
        serverUrl: baseUrl,
        gitHubUrl: `${baseUrl}/${Registry.webPath(r.scope)}`,
        workFolder: r.workFolder,
        ephemeral: r.ephemeral,
        disableUpdate: false,
      },
      ".credentials": {
        scheme: "OAuth",
        data: { clientId: randomUUID(), authorizationUrl: `${baseUrl}/_broker/oauth2/token`, token: r.secret },
      },
      ".credentials_rsaparams": rsaParams(),
    };
  }

  /** `encoded_jit_config`: base64 of `{file: base64(JSON)}`; kept (the last 1000) for `GET /_sim/jit-configs`. */
  encodedJitConfig(r: Runner, baseUrl: string): string {
    const files = Object.fromEntries(
      Object.entries(this.configFiles(r, baseUrl)).map(([name, content]) => [name, Buffer.from(JSON.stringify(content)).toString("base64")]),
    );
    const encoded = Buffer.from(JSON.stringify(files)).toString("base64");
    this.issuedJitConfigs.push({ runner_id: r.id, runner_name: r.name, encoded_jit_config: encoded });
    if (this.issuedJitConfigs.length > ISSUED_JIT_CONFIGS) this.issuedJitConfigs.shift();
    return encoded;
  }

  readonly issuedJitConfigs: IssuedJitConfig[] = [];

  delete(r: Runner): void {
    this.runners.delete(r.id);
    this.retiredSecrets.add(r.secret);
  }

  /** The runner holding this secret, "gone" if it was deleted, undefined if never issued. */
  runnerBySecret(secret: string): Runner | "gone" | undefined {
    for (const r of this.runners.values()) if (r.secret === secret) return r;
    return this.retiredSecrets.has(secret) ? "gone" : undefined;
  }
}

/**
 * The runner's RSA key as actions/runner stores it (.NET RSAParameters, each
 * field base64 of its bytes): a 2048-bit key's sizes, random bytes (no key
 * arithmetic: nothing in the sim signs with it), the public exponent AQAB.
 */
function rsaParams(): Record<string, string> {
  const bytes = (n: number) => randomBytes(n).toString("base64");
  return { d: bytes(256), dp: bytes(128), dq: bytes(128), exponent: "AQAB", inverseQ: bytes(128), modulus: bytes(256), p: bytes(128), q: bytes(128) };
}
