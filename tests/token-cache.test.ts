import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXPIRY_MARGIN_MS, TokenCache } from "../lib/github/token-cache.ts";

const cachePath = () => join(mkdtempSync(join(tmpdir(), "tc-")), "cache.json");
const now = Date.parse("2026-11-28T06:00:00Z");
const token = (expiresInMs: number) => ({ token: "ghs_cachedTokenValue0123456789", expiresAt: new Date(now + expiresInMs).toISOString() });

test("tokens persist across instances (process restarts) in a 0600 file", () => {
  const path = cachePath();
  const value = token(3_600_000);
  new TokenCache(path, () => now).set("42", value);
  expect(new TokenCache(path, () => now).get("42")).toEqual(value);
  expect(statSync(path).mode & 0o777).toBe(0o600);
});

test("a token within the expiry margin is not handed out", () => {
  const cache = new TokenCache(cachePath(), () => now);
  cache.set("42", token(EXPIRY_MARGIN_MS - 1000));
  cache.set("43", token(EXPIRY_MARGIN_MS + 60_000));
  expect(cache.get("42")).toBeUndefined();
  expect(cache.get("43")).toBeDefined();
  expect(cache.get("44")).toBeUndefined();
});

test("a dropped token is gone for every instance; other entries stay", () => {
  const path = cachePath();
  const cache = new TokenCache(path, () => now);
  cache.set("42", token(3_600_000));
  cache.set("43", token(3_600_000));
  new TokenCache(path, () => now).delete("42");
  expect(cache.get("42")).toBeUndefined();
  expect(cache.get("43")).toBeDefined();
});

test("an entry in auth-app's old string format, an unparsable date or a corrupt file reads as a miss, and is overwritten", () => {
  const path = cachePath();
  writeFileSync(path, JSON.stringify({ "42": "ghs_x|2026-11-28T06:00:00Z|2026-11-28T07:00:00Z|all|actions!", "43": { token: "ghs_y", expiresAt: "soon" } }));
  const cache = new TokenCache(path, () => now);
  expect(cache.get("42")).toBeUndefined();
  expect(cache.get("43")).toBeUndefined();
  writeFileSync(path, "{not json");
  expect(cache.get("42")).toBeUndefined();
  cache.set("42", token(3_600_000));
  expect(JSON.parse(readFileSync(path, "utf8"))["42"].token).toBe("ghs_cachedTokenValue0123456789");
});
