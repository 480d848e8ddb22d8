// Random token strings in GitHub's formats.
import { randomBytes } from "node:crypto";

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export function randomString(length: number, alphabet = ALNUM): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

/** `ghs_`/`ghp_` + 36 characters, like GitHub's classic 40-character tokens. */
export const githubToken = (prefix: "ghs" | "ghp") => `${prefix}_${randomString(36)}`;

/** Registration and remove tokens: 29 upper-case letters and digits. */
export const runnerToken = () => randomString(29, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
