// Checks a GitHub App JWT the way GitHub does, answering each defect with
// GitHub's own 401 message (auth-app's clock-skew retry matches on them).
import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { ApiError } from "./http.ts";

export const JWT_MESSAGES = {
  undecodable: "A JSON web token could not be decoded",
  expPast: "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
  expFar: "'Expiration time' claim ('exp') is too far in the future",
  iat: "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
  iss: "'Issuer' claim ('iss') must be an Integer",
  unknownApp: "Integration not found",
} as const;

/** How far ahead of the sim clock `iat` may be before it counts as not yet issued (seconds). */
const IAT_LEEWAY_S = 60;

export interface AppIdentity {
  id: number;
  clientId: string;
  publicKey: KeyObject;
}

function decodePart(part: string | undefined): Record<string, unknown> {
  if (!part) throw new ApiError(401, JWT_MESSAGES.undecodable);
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    if (value && typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below like any other undecodable token
  }
  throw new ApiError(401, JWT_MESSAGES.undecodable);
}

/** Throws ApiError(401) unless `jwt` is a valid RS256 token for `app` at `nowS` (epoch seconds). */
export function verifyAppJwt(jwt: string, app: AppIdentity, nowS: number): void {
  const parts = jwt.split(".");
  if (parts.length !== 3) throw new ApiError(401, JWT_MESSAGES.undecodable);
  const [h, p, sig] = parts as [string, string, string];
  const header = decodePart(h);
  const payload = decodePart(p);
  if (header.alg !== "RS256") throw new ApiError(401, JWT_MESSAGES.undecodable);
  const signed = verify("RSA-SHA256", Buffer.from(`${h}.${p}`), app.publicKey, Buffer.from(sig, "base64url"));
  if (!signed) throw new ApiError(401, JWT_MESSAGES.undecodable);

  const { iss, exp, iat } = payload;
  const issText = String(iss);
  if (issText !== app.clientId) {
    if (!/^\d+$/.test(issText)) throw new ApiError(401, JWT_MESSAGES.iss);
    if (Number(issText) !== app.id) throw new ApiError(401, JWT_MESSAGES.unknownApp);
  }
  if (typeof exp !== "number" || !Number.isFinite(exp) || exp <= nowS) throw new ApiError(401, JWT_MESSAGES.expPast);
  if (exp - nowS > 600) throw new ApiError(401, JWT_MESSAGES.expFar);
  if (typeof iat !== "number" || !Number.isInteger(iat) || iat > nowS + IAT_LEEWAY_S) throw new ApiError(401, JWT_MESSAGES.iat);
}

export function publicKeyOf(privateKeyPem: string): KeyObject {
  return createPublicKey(privateKeyPem);
}
