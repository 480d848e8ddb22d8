import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EXPIRY_MARGIN_MS, TokenCache } from "../lib/github/cache.ts";

const cachePath = () => join(mkdtempSync(join(tmpdir(), "tc-")), "cache.json");
const now = Date.parse("2026-11-28T06:00:00Z");
/** An entry as auth-app writes it: token|createdAt|expiresAt|repositorySelection|permissions|singleFileName. */
const entry = (expiresInMs: number, token = "ghs_cachedTokenValue0123456789") =>
  [token, new Date(now).toISOString(), new Date(now + expiresInMs).toISOString(), "all", "organization_self_hosted_runners!", ""].join("|");

test("tokens persist across instances (process restarts) in a 0600 file", () => {
  const path = cachePath();
  const value = entry(3_600_000);
  new TokenCache(path, () => now).set("42", value);
  expect(new TokenCache(path, () => now).get("42")).toBe(value);
  expect(statSync(path).mode & 0o777).toBe(0o600);
});

test("a token within the expiry margin is not handed out", () => {
  const cache = new TokenCache(cachePath(), () => now);
  cache.set("42", entry(EXPIRY_MARGIN_MS - 1000));
  cache.set("43", entry(EXPIRY_MARGIN_MS + 60_000));
  expect(cache.get("42")).toBeUndefined();
  expect(cache.get("43")).toBeDefined();
  expect(cache.get("44")).toBeUndefined();
});

test("a replaced token is replaced for every instance; other entries stay", () => {
  const path = cachePath();
  const cache = new TokenCache(path, () => now);
  cache.set("42", entry(3_600_000, "ghs_old"));
  cache.set("43", entry(3_600_000, "ghs_other"));
  new TokenCache(path, () => now).set("42", entry(3_600_000, "ghs_new"));
  expect(cache.get("42")?.split("|")[0]).toBe("ghs_new");
  expect(cache.get("43")?.split("|")[0]).toBe("ghs_other");
});

test("only the tokens read from the file count as handed out (a 401 on one may mean it was revoked)", () => {
  const cache = new TokenCache(cachePath(), () => now);
  cache.set("42", entry(3_600_000, "ghs_read"));
  cache.set("43", entry(3_600_000, "ghs_unread"));
  cache.get("42");
  expect([...cache.handedOut]).toEqual(["ghs_read"]);
});

test("an entry in our old {token, expiresAt} format, an unparsable date or a corrupt file reads as a miss, and is overwritten", () => {
  const path = cachePath();
  writeFileSync(path, JSON.stringify({ "42": { token: "ghs_x", expiresAt: "2026-11-28T07:00:00Z" }, "43": "ghs_y|2026-11-28T06:00:00Z|soon|all||" }));
  const cache = new TokenCache(path, () => now);
  expect(cache.get("42")).toBeUndefined();
  expect(cache.get("43")).toBeUndefined();
  writeFileSync(path, "{not json");
  expect(cache.get("42")).toBeUndefined();
  cache.set("42", entry(3_600_000));
  expect(JSON.parse(readFileSync(path, "utf8"))["42"]).toStartWith("ghs_cachedTokenValue0123456789|");
});
