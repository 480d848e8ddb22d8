import { expect, test } from "bun:test";
import { isSlotsOwn, MAX_NAME, newName, shortHost, slotNames, slotPrefix } from "../lib/names.ts";

test("names are <prefix>-<host>-<slot>-<random>, unique, and fit GitHub's 64", () => {
  const a = newName("acme-mac", 1, "mini-07");
  expect(a).toMatch(/^acme-mac-mini-07-1-[0-9a-f]{6}$/);
  expect(newName("acme-mac", 1, "mini-07")).not.toBe(a);
  const long = newName("p".repeat(32), 2, "h".repeat(80));
  expect(long.length).toBeLessThanOrEqual(MAX_NAME);
  expect(isSlotsOwn(long, "p".repeat(32), 2, "h".repeat(80))).toBe(true);
});

test("a slot owns only names with its own prefix, host and slot", () => {
  const mine = newName("acme", 1, "mini");
  expect(isSlotsOwn(mine, "acme", 1, "mini")).toBe(true);
  expect(isSlotsOwn(mine, "acme", 2, "mini")).toBe(false);
  expect(isSlotsOwn(mine, "acme", 1, "other")).toBe(false);
  expect(isSlotsOwn(mine, "acm", 1, "mini")).toBe(false);
  expect(isSlotsOwn(`${slotPrefix("acme", 1, "mini")}golden`, "acme", 1, "mini")).toBe(false);
  expect(isSlotsOwn(`${mine}0`, "acme", 1, "mini")).toBe(false);
  expect(isSlotsOwn("someone-elses-runner", "acme", 1, "mini")).toBe(false);
});

test("host names are shortened to their first label and sanitised", () => {
  expect(shortHost("Mini-07.corp.example.com")).toBe("mini-07");
  expect(shortHost("Bob's MacBook")).toBe("bob-s-macbook");
});

test("a slot's golden VM is named by the image, owned as a golden only, never as a job VM", () => {
  const names = slotNames("acme", 1, "mini");
  const digest = "0123456789abcdef".repeat(4);
  const golden = names.golden(digest);
  expect(golden).toBe("acme-mini-1-golden-0123456789ab");
  expect(names.ownsGolden(golden)).toBe(true);
  // Sweeps, recovery and cleanup go by owns(): they never take a golden.
  expect(names.owns(golden)).toBe(false);
  expect(names.ownsGolden(names.next())).toBe(false);
  expect(slotNames("acme", 2, "mini").ownsGolden(golden)).toBe(false);
  expect(names.ownsGolden(`${golden}0`)).toBe(false);
});
