import { expect, test } from "bun:test";
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXPIRY_MARGIN_MS, fileTokenCache } from "../lib/github/token-cache.ts";

const entry = (expiresAt: Date) => `ghs_x|2026-11-28T06:00:00Z|${expiresAt.toISOString()}|all|actions!`;

test("tokens persist across instances (process restarts) in a 0600 file", () => {
  const path = join(mkdtempSync(join(tmpdir(), "tc-")), "cache.json");
  const now = Date.parse("2026-11-28T06:00:00Z");
  const value = entry(new Date(now + 3_600_000));
  fileTokenCache(path, () => now).set("42", value);
  expect(fileTokenCache(path, () => now).get("42")).toBe(value);
  expect(statSync(path).mode & 0o777).toBe(0o600);
});

test("a token within the expiry margin is not handed out (auth-app would use it blindly)", () => {
  const path = join(mkdtempSync(join(tmpdir(), "tc-")), "cache.json");
  const now = Date.parse("2026-11-28T06:00:00Z");
  const cache = fileTokenCache(path, () => now);
  cache.set("42", entry(new Date(now + EXPIRY_MARGIN_MS - 1000)));
  cache.set("43", entry(new Date(now + EXPIRY_MARGIN_MS + 60_000)));
  expect(cache.get("42")).toBeUndefined();
  expect(cache.get("43")).toBeDefined();
  expect(cache.get("44")).toBeUndefined();
});
