// The OCI Distribution calls the product makes, each with a timeout and a
// RegistryError saying what to do. It authenticates as tart does: a 401's Basic
// challenge gets the credentials; Bearer trades them at the realm for a token.
import { createHash } from "node:crypto";
import { MacosRunnerError, excerpt, type ExitKind } from "../core/errors.ts";
import { registerSecret } from "../core/redact.ts";
import { isDigest } from "./oci-ref.ts";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DEFAULT_TIMEOUT_MS = 30_000;

/** The fields of an OCI image manifest the product reads. */
interface OciManifest {
  config: { digest: string };
  layers: unknown[];
  annotations?: Record<string, string>;
}

export type RegistryFailure = "unreachable" | "timeout" | "tls" | "unauthorized" | "forbidden" | "not-found" | "server" | "unexpected";

const KIND: Record<RegistryFailure, ExitKind> = {
  unreachable: "tempfail",
  timeout: "tempfail",
  server: "tempfail",
  tls: "config",
  unauthorized: "config",
  forbidden: "config",
  "not-found": "config",
  unexpected: "bad-input",
};

export class RegistryError extends MacosRunnerError {
  constructor(
    readonly failure: RegistryFailure,
    message: string,
    readonly status?: number,
  ) {
    super(message, { kind: KIND[failure] });
  }
}

export interface RegistryOptions {
  host: string;
  /** Plain HTTP (tart's --insecure). */
  insecure?: boolean | undefined;
  credentials?: RegistryCredentials | undefined;
  timeoutMs?: number;
  /** Named when credentials are refused, e.g. "image.username and image.password_path". */
  credentialsSource?: string;
}

export class RegistryClient {
  readonly base: string;
  private authorization: string | undefined;
  private readonly timeoutMs: number;

  constructor(private readonly opts: RegistryOptions) {
    this.base = `${opts.insecure ? "http" : "https"}://${opts.host}`;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The OCI Accept header is needed: docker-registry answers 404 without it. */
  async headManifest(namespace: string, reference: string): Promise<{ digest: string; size: number }> {
    const what = `looking up ${namespace}:${reference}`;
    const res = await this.call("HEAD", `/v2/${namespace}/manifests/${reference}`, what, { Accept: OCI_MANIFEST });
    const digest = res.headers.get("docker-content-digest");
    if (!digest || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
      throw new RegistryError("unexpected", `${this.opts.host} answered ${what} without a Docker-Content-Digest header; is it an OCI Distribution registry?`);
    }
    return { digest, size: Number(res.headers.get("content-length") ?? 0) };
  }

  async getManifest(namespace: string, reference: string): Promise<{ digest: string; manifest: OciManifest }> {
    const what = `reading the manifest of ${namespace}:${reference}`;
    const res = await this.call("GET", `/v2/${namespace}/manifests/${reference}`, what, { Accept: OCI_MANIFEST });
    const raw = Buffer.from(await res.arrayBuffer());
    const digest = `sha256:${createHash("sha256").update(raw).digest("hex")}`;
    // A registry must serve exactly the bytes a digest names (a broken mirror or proxy may not).
    if (isDigest(reference) && digest !== reference) {
      throw new RegistryError("unexpected", `${this.opts.host} served a manifest for ${namespace}@${reference} whose sha256 is ${digest}: the content does not match its digest`);
    }
    let manifest: OciManifest;
    try {
      manifest = JSON.parse(raw.toString("utf8")) as OciManifest;
    } catch {
      throw new RegistryError("unexpected", `${this.opts.host} answered ${what} with something that is not JSON: ${excerpt(raw.toString("utf8"))}`);
    }
    if (!manifest?.config?.digest || !Array.isArray(manifest.layers)) {
      throw new RegistryError("unexpected", `${this.opts.host}: the manifest of ${namespace}:${reference} has no config or layers; is it a tart image?`);
    }
    return { digest, manifest };
  }

  async getJsonBlob<T>(namespace: string, digest: string): Promise<T> {
    const what = `reading blob ${digest} of ${namespace}`;
    const res = await this.call("GET", `/v2/${namespace}/blobs/${digest}`, what, {});
    const text = await res.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new RegistryError("unexpected", `${this.opts.host} answered ${what} with something that is not JSON: ${excerpt(text)}`);
    }
  }

  /** A tag answers 400 DIGEST_INVALID; the registry needs storage.delete.enabled. */
  async deleteManifest(namespace: string, digest: string): Promise<void> {
    await this.call("DELETE", `/v2/${namespace}/manifests/${digest}`, `deleting ${namespace}@${digest}`, {}, [202]);
  }

  async listTags(namespace: string): Promise<string[]> {
    return this.paged(`/v2/${namespace}/tags/list?n=1000`, `listing the tags of ${namespace}`, "tags");
  }

  async listRepositories(): Promise<string[]> {
    return this.paged("/v2/_catalog?n=1000", "listing repositories", "repositories");
  }

  /** The registry caps a page at 1000. */
  private async paged(first: string, what: string, key: "tags" | "repositories"): Promise<string[]> {
    const out: string[] = [];
    for (let path: string | undefined = first; path; ) {
      const res = await this.call("GET", path, what, {});
      const body = (await res.json().catch(() => ({}))) as Record<string, string[] | null | undefined>;
      out.push(...(body[key] ?? []));
      path = /<([^>]+)>;\s*rel="?next"?/.exec(res.headers.get("link") ?? "")?.[1];
    }
    return out;
  }

  private async call(method: string, path: string, what: string, headers: Record<string, string>, ok = [200]): Promise<Response> {
    let res = await this.send(method, path, what, headers);
    if (res.status === 401) {
      const before = this.authorization;
      await this.answerChallenge(res, what);
      if (this.authorization !== before) res = await this.send(method, path, what, headers);
    }
    if (ok.includes(res.status)) return res;
    throw await this.statusError(res, method, what);
  }

  private async send(method: string, path: string, what: string, headers: Record<string, string>): Promise<Response> {
    try {
      return await fetch(/^https?:/.test(path) ? path : `${this.base}${path}`, {
        method,
        headers: { ...headers, ...(this.authorization && { Authorization: this.authorization }) },
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: "follow",
      });
    } catch (err) {
      throw this.networkError(err, what);
    }
  }

  private async answerChallenge(res: Response, what: string): Promise<void> {
    const challenge = parseChallenge(res.headers.get("www-authenticate"));
    await res.body?.cancel();
    const creds = this.opts.credentials;
    if (challenge?.scheme === "basic") {
      if (!creds) throw this.unauthorized(what, "wants credentials and none are configured");
      this.authorization = basicAuthorization(creds);
    } else if (challenge?.scheme === "bearer") {
      try {
        this.authorization = `Bearer ${await fetchBearerToken(challenge, creds, this.timeoutMs)}`;
      } catch (err) {
        if (err instanceof TokenRequestFailed && (err.status === 401 || err.status === 403)) {
          throw this.unauthorized(what, `refused a token (${err.message})`);
        }
        throw this.networkError(err, `${what} (getting a token)`);
      }
    }
  }

  private unauthorized(what: string, detail: string): RegistryError {
    const who = this.opts.credentials ? ` for user ${this.opts.credentials.username}` : "";
    const check = this.opts.credentialsSource ? `; check ${this.opts.credentialsSource}` : "";
    return new RegistryError("unauthorized", `the registry ${this.opts.host} ${detail}${who} (401) while ${what}${check}`, 401);
  }

  private async statusError(res: Response, method: string, what: string): Promise<RegistryError> {
    const body = method === "HEAD" ? "" : await res.text().catch(() => "");
    const code = registryErrorCode(body);
    const detail = code ? ` ${code}` : body ? `: ${excerpt(body)}` : "";
    const s = res.status;
    if (s === 401) return this.unauthorized(what, "refused the credentials");
    if (s === 403) return new RegistryError("forbidden", `the registry ${this.opts.host} denied ${what} (403${detail}); the account needs more rights`, s);
    if (s === 404) return new RegistryError("not-found", `${what}: not found on ${this.opts.host} (404${detail})`, s);
    if (s === 429 || s >= 500) return new RegistryError("server", `the registry ${this.opts.host} failed ${what} (${s}${detail}); try again later`, s);
    return new RegistryError("unexpected", `the registry ${this.opts.host} answered ${s}${detail} while ${what}`, s);
  }

  private networkError(err: unknown, what: string): RegistryError {
    const e = err as { name?: string; code?: string; message?: string };
    if (e.name === "TimeoutError" || e.name === "AbortError") {
      return new RegistryError("timeout", `no answer from the registry ${this.opts.host} within ${this.timeoutMs / 1000} s while ${what}; is it overloaded or down?`);
    }
    if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/i.test(`${e.code ?? ""} ${e.message ?? ""}`)) {
      return new RegistryError("tls", `the registry ${this.opts.host}'s TLS certificate is not trusted while ${what} (${e.code ?? e.message}); trust its CA on this host (security add-trusted-cert), or use image.insecure for a plain-HTTP registry`);
    }
    return new RegistryError("unreachable", `cannot reach the registry at ${this.base} while ${what} (${e.code ?? e.message ?? String(err)}); is it running and reachable from this host?`);
  }
}

/** {"errors":[{"code":"MANIFEST_UNKNOWN",…}]} */
function registryErrorCode(body: string): string | undefined {
  try {
    const code = (JSON.parse(body) as { errors?: { code?: unknown }[] }).errors?.[0]?.code;
    return typeof code === "string" ? code : undefined;
  } catch {
    return undefined;
  }
}

interface Challenge {
  scheme: "basic" | "bearer";
  params: Record<string, string>;
}

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** `Bearer realm="…",service="…",scope="…"`; commas inside quotes stay. */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  const scheme = m?.[1]?.toLowerCase();
  if (scheme !== "basic" && scheme !== "bearer") return undefined;
  const params: Record<string, string> = {};
  for (const p of m![2]!.matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : p[3]!;
  }
  return { scheme, params };
}

function basicAuthorization(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

class TokenRequestFailed extends Error {
  constructor(readonly status: number | undefined, message: string) {
    super(message);
  }
}

async function fetchBearerToken(challenge: Challenge, credentials: RegistryCredentials | undefined, timeoutMs: number): Promise<string> {
  const realm = challenge.params.realm;
  if (!realm) throw new TokenRequestFailed(undefined, "the Bearer challenge names no realm");
  const url = new URL(realm);
  for (const key of ["service", "scope"]) if (challenge.params[key]) url.searchParams.set(key, challenge.params[key]!);
  const res = await fetch(url, {
    headers: credentials ? { Authorization: basicAuthorization(credentials) } : {},
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new TokenRequestFailed(res.status, `the token service ${url.origin}${url.pathname} answered ${res.status}`);
  }
  const body = (await res.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown };
  const token = typeof body.token === "string" ? body.token : typeof body.access_token === "string" ? body.access_token : undefined;
  if (!token) throw new TokenRequestFailed(200, `the token service ${url.origin}${url.pathname} returned no token`);
  registerSecret(token);
  return token;
}

// A golden image's size, upload time and labels (`tart push --label`), without pulling it.
export const RUNNER_VERSION_LABEL = "dev.macos-runner.runner-version";
const DISK_SIZE_ANNOTATION = "org.cirruslabs.tart.uncompressed-disk-size";
const UPLOAD_TIME_ANNOTATION = "org.cirruslabs.tart.upload-time";

export interface ImageInfo {
  digest: string;
  uncompressedDiskSize?: number;
  uploadedAt?: string;
  labels: Record<string, string>;
  runnerVersion?: string;
}

export async function readImageInfo(registry: RegistryClient, namespace: string, reference: string): Promise<ImageInfo> {
  const { digest, manifest } = await registry.getManifest(namespace, reference);
  const config = await registry.getJsonBlob<{ config?: { Labels?: Record<string, string> | null } }>(namespace, manifest.config.digest);
  // Labels live in the OCI config; a manifest annotation of the same name counts too (other push tools).
  const labels = { ...manifest.annotations, ...config?.config?.Labels };
  const size = Number(manifest.annotations?.[DISK_SIZE_ANNOTATION]);
  return {
    digest,
    ...(Number.isFinite(size) && size > 0 && { uncompressedDiskSize: size }),
    ...(manifest.annotations?.[UPLOAD_TIME_ANNOTATION] && { uploadedAt: manifest.annotations[UPLOAD_TIME_ANNOTATION] }),
    labels,
    ...(labels[RUNNER_VERSION_LABEL] && { runnerVersion: labels[RUNNER_VERSION_LABEL] }),
  };
}
