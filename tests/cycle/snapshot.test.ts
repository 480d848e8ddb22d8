// The snapshot start's fallback, in process: a golden whose saved state no
// longer matches its hardware cannot be restored, and the cycle boots cold in
// the same cycle and serves its job; the spoilt golden is deleted and made
// again by a later cycle. The restore path itself, on the fake tart's
// processes and timings, is in tests/e2e/snapshot.
import { afterEach, expect, test } from "bun:test";
import { cycleHost, type CycleHost } from "./harness.ts";

let host: CycleHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

const events = (lines: { event?: string }[], name: string) => lines.filter((l) => l.event === name);

/** One loop serving one job to success; its log lines. */
async function serve(h: CycleHost, name: string) {
  const job = h.enqueue(name);
  const { code, lines } = await h.loop();
  expect(code).toBe(0);
  expect([h.job(job.id).result, h.job(job.id).attempts]).toEqual(["Succeeded", 1]);
  return lines;
}

test("a golden spoilt by `tart set` falls back to a cold boot in the same cycle; a later cycle makes the golden again", async () => {
  host = await cycleHost({ config: { vm: { start: "snapshot" } } });
  const h = host;
  const first = await serve(h, "makes-golden");
  expect(events(first, "golden.ready")).toHaveLength(1);
  const golden = (h.state().golden as { name: string }).name;
  // Someone changes the suspended golden's hardware: its saved state no longer fits it.
  await h.tart.set(golden, { cpu: 8 });
  // The VM made ahead predates the damage: remove it so this cycle clones the spoilt golden.
  const ahead = (h.state().next_vm as { name: string }).name;
  await h.clock.settle(h.tart.forceOff(ahead), { maxMs: 60_000 });
  await h.clock.settle(h.tart.delete(ahead), { maxMs: 60_000 });

  const spoilt = await serve(h, "spoilt");
  expect(events(spoilt, "snapshot.fallback")).toHaveLength(1);
  expect(h.state().path).toBe("cold");
  expect((await h.tart.list()).map((v) => v.Name)).not.toContain(golden);

  const again = await serve(h, "golden-again");
  expect(events(again, "golden.ready")).toHaveLength(1);
  expect(h.state().path).toBe("snapshot");
});
