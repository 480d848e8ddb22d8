// The test clock (tests/helpers/clock.ts) and the waits of lib/core/wait.ts on it.
import { expect, test } from "bun:test";
import { after, poll, Waker } from "../lib/core/wait.ts";
import { FakeClock } from "./helpers/clock.ts";

const EPOCH = Date.parse("2030-06-01T12:00:00Z");

test("starts at the epoch it is given; advance fires the timers due, soonest first, equal times in the order they were made", async () => {
  const clock = new FakeClock(EPOCH);
  expect(clock.now()).toBe(EPOCH);
  const fired: string[] = [];
  const at = (name: string, ms: number) => void clock.sleep(ms).then(() => fired.push(`${name}@${clock.now() - EPOCH}`));
  at("c", 30);
  at("a", 10);
  at("b", 20);
  at("a2", 10);
  await clock.advance(25);
  expect(fired).toEqual(["a@10", "a2@10", "b@20"]);
  expect(clock.now()).toBe(EPOCH + 25);
  expect(clock.pending).toBe(1);
  await clock.advance(5);
  expect(fired).toEqual(["a@10", "a2@10", "b@20", "c@30"]);
  expect(clock.pending).toBe(0);
});

test("advance fires a sleep made by a timer it fired when that falls in the same span", async () => {
  const clock = new FakeClock(EPOCH);
  const seen: number[] = [];
  void (async () => {
    for (let i = 0; i < 3; i++) {
      await clock.sleep(100);
      seen.push(clock.now() - EPOCH);
    }
  })();
  await clock.advance(250);
  expect(seen).toEqual([100, 200]);
  await clock.advance(50);
  expect(seen).toEqual([100, 200, 300]);
});

test("an aborted sleep resolves at once, without time passing, and leaves the queue; an already aborted signal queues nothing", async () => {
  const clock = new FakeClock(EPOCH);
  const cut = new AbortController();
  let done = false;
  const p = clock.sleep(60_000, cut.signal).then(() => (done = true));
  expect(clock.pending).toBe(1);
  cut.abort();
  await p;
  expect(done).toBe(true);
  expect(clock.pending).toBe(0);
  expect(clock.now()).toBe(EPOCH);
  await clock.sleep(1_000, cut.signal);
  expect(clock.pending).toBe(0);
});

test("settle drives a chain of sleeps to its end in virtual time, in a few real milliseconds", async () => {
  const clock = new FakeClock(EPOCH);
  const chain = async () => {
    for (const ms of [1_000, 60_000, 3_600_000]) await clock.sleep(ms);
    return clock.now() - EPOCH;
  };
  const real = performance.now();
  expect(await clock.settle(chain(), { maxMs: 4 * 3_600_000 })).toBe(3_661_000);
  expect(performance.now() - real).toBeLessThan(1_000);
});

test("settle passes on the promise's rejection", async () => {
  const clock = new FakeClock(EPOCH);
  const failing = async () => {
    await clock.sleep(5_000);
    throw new Error("boom");
  };
  await expect(clock.settle(failing(), { maxMs: 10_000 })).rejects.toThrow("boom");
  expect(clock.now()).toBe(EPOCH + 5_000);
});

test("settle fails, saying so, when the promise would take longer than maxMs of virtual time", async () => {
  const clock = new FakeClock(EPOCH);
  const slow = clock.sleep(10 * 60_000);
  await expect(clock.settle(slow, { maxMs: 60_000 })).rejects.toThrow(
    "FakeClock.settle: not settled within 60000 ms of virtual time (now +0 ms; the next of 1 pending sleep(s) ends at +600000 ms)");
  expect(clock.now()).toBe(EPOCH);
});

test("settle fails, saying so, when nothing is pending on the clock and the promise does not settle in real time", async () => {
  const clock = new FakeClock(EPOCH);
  await expect(clock.settle(new Promise(() => {}), { maxMs: 1_000, realMs: 50 })).rejects.toThrow(
    /nothing settled within 50 ms of real time and no sleep is pending .*the program waits on something the clock does not drive/);
});

test("poll gives up at its deadline on the clock it is given, probing every everyMs of that clock", async () => {
  const clock = new FakeClock(EPOCH);
  const probes: number[] = [];
  const never = poll(() => void probes.push(clock.now() - EPOCH), { deadline: EPOCH + 5_000, everyMs: 1_000, clock });
  expect(await clock.settle(never, { maxMs: 10_000 })).toBeUndefined();
  expect(probes).toEqual([0, 1_000, 2_000, 3_000, 4_000, 5_000]);
  expect(clock.now()).toBe(EPOCH + 5_000);

  const ready = poll(() => (clock.now() - EPOCH >= 8_000 ? "up" : undefined), { deadline: EPOCH + 60_000, everyMs: 1_000, clock });
  expect(await clock.settle(ready, { maxMs: 60_000 })).toBe("up");
  expect(clock.now()).toBe(EPOCH + 8_000);
});

test("a Waker's sleep on the clock ends when woken, with no time passing; a wake before the sleep ends the next one at once", async () => {
  const clock = new FakeClock(EPOCH);
  const waker = new Waker(clock);
  const slept = waker.sleep(30_000);
  expect(clock.pending).toBe(1);
  waker.wake();
  await slept;
  expect(clock.now()).toBe(EPOCH);
  expect(clock.pending).toBe(0);
  waker.wake();
  await waker.sleep(30_000);
  expect(clock.pending).toBe(0);
  // Unwoken, it sleeps its time on the clock.
  await clock.settle(waker.sleep(30_000), { maxMs: 30_000 });
  expect(clock.now()).toBe(EPOCH + 30_000);
});

test("after calls back once its time has passed on the clock, and never once cancelled", async () => {
  const clock = new FakeClock(EPOCH);
  const calls: string[] = [];
  after(clock, 1_000, () => calls.push("due"));
  const cancel = after(clock, 500, () => calls.push("cancelled"));
  cancel();
  await clock.advance(999);
  expect(calls).toEqual([]);
  await clock.advance(1);
  expect(calls).toEqual(["due"]);
  expect(clock.pending).toBe(0);
});

test("settle does not move time while held real work runs: a deadline pending meanwhile is not met early", async () => {
  const clock = new FakeClock(EPOCH);
  let deadlineHit = false;
  void clock.sleep(60_000).then(() => (deadlineHit = true));
  // Real work of 30 ms (a model's own I/O) that the program then follows with a 1 s wait on the clock.
  const work = clock.hold(new Promise<string>((resolve) => setTimeout(() => resolve("answered"), 30))).then(async (v) => {
    await clock.sleep(1_000);
    return v;
  });
  expect(await clock.settle(work, { maxMs: 120_000 })).toBe("answered");
  expect(deadlineHit).toBe(false);
  expect(clock.now()).toBe(EPOCH + 1_000);
});
