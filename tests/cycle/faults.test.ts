// Faults of tart, the VM and GitHub, in process: each cycle fails in one
// named line with its documented exit code, cleans up once, and costs no
// runner or clone it did not need. What needs real processes (a tart exec
// session that drops, a runner killed in the guest, ssh host keys) is in
// tests/e2e/faults.
import { afterEach, expect, test } from "bun:test";
import { join } from "node:path";
import { exitCode } from "../../lib/core/errors.ts";
import { events, cycleHost, type CycleHost } from "./harness.ts";

let host: CycleHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});


/** API calls of one endpoint kind, e.g. calls(h, "generate-jitconfig"). */
const calls = (h: CycleHost, what: string) =>
  Object.entries(h.github.state().requests.byEndpoint).filter(([k]) => k.includes(what)).reduce((n, [, c]) => n + c, 0);
const running = async (h: CycleHost) => (await h.tart.list()).filter((v) => v.Running).map((v) => v.Name);
const ours = async (h: CycleHost) => (await h.tart.list()).filter((v) => v.Name.startsWith(`${h.prefix}-`));
const JIT_PATH = "/orgs/acme/actions/runners/generate-jitconfig";

test("a VM that fails to start: seen at once, no runner made, cleaned up, exit 1", async () => {
  host = await cycleHost({ tart: { faults: [{ kind: "start_failure" }] } });
  const h = host;
  const { code, lines } = await h.loop();
  expect(code).toBe(exitCode("failure"));
  expect(events(lines, "cycle.failed")[0]!.msg).toContain("virtual machine failed to start");
  // At once: not after vm.boot_timeout.
  const st = h.state() as { cycle_started_at: string; last_failure_at: string };
  expect(Date.parse(st.last_failure_at) - Date.parse(st.cycle_started_at)).toBeLessThan(5_000);
  expect(calls(h, "generate-jitconfig")).toBe(0);
  expect(await running(h)).toEqual([]);
});

test("the 2-VM limit: named in one line, no runner and no clone spent per retry, served once a VM place frees up", async () => {
  host = await cycleHost();
  const h = host;
  // Two VMs that are not ours hold the host's two places.
  const others = ["someone-a", "someone-b"];
  for (const name of others) {
    await h.clock.settle(h.tart.clone(h.config.image.ref, name, 60_000), { maxMs: 60_000 });
    h.tart.run(name, join(h.config.host.logDir, `${name}.log`));
  }
  await h.clock.settle((async () => {
    while ((await running(h)).length < 2) await h.clock.sleep(10);
  })(), { maxMs: 5_000 });
  for (let attempt = 0; attempt < 2; attempt++) {
    const { code, lines } = await h.loop();
    expect(code).toBe(exitCode("tempfail"));
    expect(events(lines, "cycle.failed")[0]!.msg).toContain("another VM is running on this host: someone-a, someone-b");
  }
  expect(calls(h, "generate-jitconfig")).toBe(0);
  // One clone for both attempts: the untouched VM is kept for the next try.
  const kept = await ours(h);
  expect(kept.map((v) => v.Running)).toEqual([false]);
  expect(h.state().next_vm).toMatchObject({ name: kept[0]!.Name });
  for (const name of others) await h.clock.settle(h.tart.forceOff(name), { maxMs: 10_000 });
  const job = h.enqueue("after-the-limit");
  const { code } = await h.loop();
  expect(code).toBe(0);
  expect([h.job(job.id).result, h.job(job.id).attempts]).toEqual(["Succeeded", 1]);
});

test("a VM that never gets an address: boot_timeout, cleaned up once, exit 1", async () => {
  host = await cycleHost({ config: { vm: { boot_timeout: "2s" } }, tart: { faults: [{ kind: "no_ip" }] } });
  const h = host;
  const { code, lines } = await h.loop();
  expect(code).toBe(exitCode("failure"));
  expect(events(lines, "cycle.failed")[0]!.msg).toContain("got no address within vm.boot_timeout");
  // One cleanup: one DELETE per runner made, one stop and delete of the VM.
  expect(events(lines, "cleanup.done")).toHaveLength(1);
  expect(events(lines, "cleanup.vm")).toHaveLength(1);
  expect(calls(h, "DELETE")).toBe(calls(h, "generate-jitconfig"));
  expect(await running(h)).toEqual([]);
  expect(h.github.state().runners).toEqual([]);
});

test("clone fails (disk full): logged, failure and backoff persisted, no runner made, exit 1", async () => {
  host = await cycleHost({ tart: { faults: [{ kind: "clone_disk_full" }] } });
  const h = host;
  const { code, lines } = await h.loop();
  expect(code).toBe(exitCode("failure"));
  expect(events(lines, "cycle.failed")[0]!.msg).toContain("No space left on device");
  const st = h.state();
  expect([st.failures, typeof st.backoff_until]).toEqual([1, "string"]);
  expect(calls(h, "generate-jitconfig")).toBe(0);
  expect(await ours(h)).toEqual([]);
});

test("5xx and a secondary rate limit while making the runner: retried, the job runs once", async () => {
  host = await cycleHost();
  const h = host;
  h.github.world.faults.add({ path: JIT_PATH, status: 502, count: 2 });
  h.github.world.faults.add({ path: JIT_PATH, rateLimited: "secondary", retryAfter: 1, count: 1 });
  const job = h.enqueue("after-retries");
  const { code, lines } = await h.loop();
  expect(code).toBe(0);
  expect(events(lines, "token.retry").length + events(lines, "github.retry").length).toBeGreaterThanOrEqual(3);
  expect(calls(h, "generate-jitconfig")).toBe(4);
  expect([h.job(job.id).result, h.job(job.id).attempts]).toEqual(["Succeeded", 1]);
});

test("a malformed 201 for the runner: exit 65 naming the missing field; the VM is cleaned", async () => {
  host = await cycleHost();
  const h = host;
  h.github.world.faults.add({ path: JIT_PATH, status: 201, body: { runner: { id: 1 } }, count: 1 });
  const { code, lines } = await h.loop();
  expect(code).toBe(exitCode("bad-input"));
  expect(events(lines, "cycle.failed")[0]!.msg).toMatch(/does not have the documented shape.*runner\.name/);
  expect(await running(h)).toEqual([]);
});

test("an HTML error page: the log keeps the status and a short excerpt, not the page", async () => {
  host = await cycleHost();
  const h = host;
  const page = `<html><head><title>502 Bad Gateway</title></head><body>${"<p>upstream sad</p>".repeat(2000)}</body></html>`;
  h.github.world.faults.add({ path: JIT_PATH, status: 502, body: page, count: 10 });
  const { code, lines } = await h.loop();
  expect(code).toBe(exitCode("tempfail"));
  const failed = events(lines, "cycle.failed")[0]!;
  expect(failed.msg).toContain("502");
  expect(JSON.stringify(failed).length).toBeLessThan(2000);
  expect(Math.max(...lines.map((l) => JSON.stringify(l).length))).toBeLessThan(2000);
});
