// A JIT config is base64 of JSON whose members are the runner's files, base64
// again. Whoever holds it is the runner until its job ran, so everything in it
// that proves identity is scrubbed, whole and in part.
import { registerSecret, registerSecretFragments } from "../core/redact.ts";

/** A UUID is 36; a short flag like "True" is not a credential. */
const CREDENTIAL_MIN_LENGTH = 16;

/** `.runner`'s fields prove no identity (the RSA key does) and tell runners apart. */
const PUBLIC_FIELDS: Record<string, ReadonlySet<string>> = {
  ".runner": new Set([
    "agentId", "agentName", "poolId", "poolName", "serverUrl", "serverUrlV2", "gitHubUrl", "workFolder",
    "ephemeral", "disableUpdate", "useV2Flow", "isHostedServer", "skipSessionRecover", "monitorSocketAddress",
  ]),
  ".credentials": new Set(["scheme", "authorizationUrl", "requireFipsCryptography"]),
};
const ALL_SECRET = new Set([".credentials_rsaparams"]);

export function registerJitConfig(encoded: string): void {
  registerSecret(encoded);
  for (const secret of jitConfigSecrets(encoded)) registerSecretFragments(secret);
}

/** None for a config that does not decode (it is then registered whole only). */
export function jitConfigSecrets(encoded: string): string[] {
  const files = jsonValue(Buffer.from(encoded.trim(), "base64").toString("utf8"));
  if (files === null || typeof files !== "object" || Array.isArray(files)) return [];
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

/** An array's items take the array's name. */
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
