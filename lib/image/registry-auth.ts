// Registry authentication the way tart does it: answer a 401's
// `Www-Authenticate` challenge. `Basic` gets the credentials; `Bearer` sends
// them (Basic) to the challenge's realm with its service and scope, and uses
// the token it returns.
import { registerSecret } from "../core/redact.ts";

export interface Challenge {
  scheme: "basic" | "bearer";
  params: Record<string, string>;
}

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** Parses `Bearer realm="…",service="…",scope="…"`; commas inside quotes stay. */
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

export function basicAuthorization(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString("base64")}`;
}

export class TokenRequestFailed extends Error {
  constructor(readonly status: number | undefined, message: string) {
    super(message);
  }
}

/** Fetches a Bearer token from the challenge's realm; the token is registered as a secret. */
export async function fetchBearerToken(challenge: Challenge, credentials: RegistryCredentials | undefined, timeoutMs: number): Promise<string> {
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
