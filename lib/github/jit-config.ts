// The secrets a JIT config carries. GitHub's `encoded_jit_config` is base64
// of a JSON object whose members are the runner's files, each base64 again:
// `.runner` (who the runner is), `.credentials` (its OAuth client) and
// `.credentials_rsaparams` (its RSA private key). Whoever holds the config is
// the runner until it has run its job, so everything in it that proves
// identity is scrubbed from output, whole and in part.
import { registerSecret, registerSecretFragments } from "../core/redact.ts";

/** A string this long in a credential file is taken for a credential (a UUID is 36, a short flag like "True" is not). */
const CREDENTIAL_MIN_LENGTH = 16;

/**
 * Fields that are not secret, by file: none of `.runner`'s proves identity
 * (the runner signs in with the RSA key of `.credentials_rsaparams`) and an
 * operator needs them to tell runners apart; in `.credentials` its clientId
 * and any token are secret. A field not named here counts as secret when it
 * is long enough; every field of `.credentials_rsaparams` is secret.
 */
const PUBLIC_FIELDS: Record<string, ReadonlySet<string>> = {
  ".runner": new Set([
    "agentId", "agentName", "poolId", "poolName", "serverUrl", "serverUrlV2", "gitHubUrl", "workFolder",
    "ephemeral", "disableUpdate", "useV2Flow", "isHostedServer", "skipSessionRecover", "monitorSocketAddress",
  ]),
  ".credentials": new Set(["scheme", "authorizationUrl", "requireFipsCryptography"]),
};
const ALL_SECRET = new Set([".credentials_rsaparams"]);

/** Registers a JIT config for redaction: whole, and the secrets inside whole and in any run of 24 characters. */
export function registerJitConfig(encoded: string): void {
  registerSecret(encoded);
  for (const secret of jitConfigSecrets(encoded)) registerSecretFragments(secret);
}

/**
 * The config's own base64 and each file's, each credential file's content
 * when it is not JSON, and the secret fields of each file; none for a config
 * that does not decode (it is then registered whole only).
 */
export function jitConfigSecrets(encoded: string): string[] {
  const files = jsonObject(Buffer.from(encoded.trim(), "base64").toString("utf8"));
  if (files === undefined) return [];
  const secrets = [encoded.trim()];
  for (const [name, member] of Object.entries(files)) {
    if (typeof member !== "string") continue;
    secrets.push(member);
    const content = Buffer.from(member, "base64").toString("utf8");
    const parsed = jsonValue(content);
    if (parsed === undefined) {
      if (name !== ".runner") secrets.push(content);
      continue;
    }
    const isPublic = PUBLIC_FIELDS[name] ?? new Set<string>();
    for (const [key, value] of stringLeaves(parsed)) {
      if (ALL_SECRET.has(name) || (!isPublic.has(key) && value.length >= CREDENTIAL_MIN_LENGTH)) secrets.push(value);
    }
  }
  return secrets;
}

/** Every string in a JSON value, with the name of the field that holds it (an array's items take the array's name). */
function stringLeaves(value: unknown, key = ""): [string, string][] {
  if (typeof value === "string") return [[key, value]];
  if (Array.isArray(value)) return value.flatMap((v) => stringLeaves(v, key));
  if (value !== null && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => stringLeaves(v, k));
  return [];
}

function jsonValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function jsonObject(text: string): Record<string, unknown> | undefined {
  const v = jsonValue(text);
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
