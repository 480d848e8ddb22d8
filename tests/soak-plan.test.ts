// The soak's plan is reproducible and complete: a seed fixes every slot's
// cards, streams do not disturb each other, and each pass of a deck holds
// every fault kind and every phase of the phase-bound ones.
import { describe, expect, test } from "bun:test";
import { Deck, DRAIN_PHASES, KILL_PHASES, label } from "../bench/soak/plan.ts";
import { rng } from "../bench/soak/prng.ts";

const draws = (seed: number, slot: number, n: number) => {
  const deck = new Deck(rng(seed, 100 + slot), slot, 0.5);
  return Array.from({ length: n }, () => deck.draw()).map((c) => (c ? JSON.stringify(c) : "-"));
};

describe("soak plan", () => {
  test("a seed replays the same cards with the same parameters; another seed does not", () => {
    expect(draws(7, 1, 200)).toEqual(draws(7, 1, 200));
    expect(draws(7, 1, 200)).not.toEqual(draws(8, 1, 200));
    expect(draws(7, 1, 200)).not.toEqual(draws(7, 2, 200));
  });

  test("streams are independent: draining one does not shift another", () => {
    const a = rng(3, 1);
    const b = rng(3, 2);
    const alone = Array.from({ length: 50 }, () => rng(3, 2).next());
    for (let i = 0; i < 1000; i++) a.next();
    expect(b.next()).toBe(alone[0]!);
    expect(rng(3, 2).int(1, 6)).toBe(rng(3, 2).int(1, 6));
  });

  test("a deck deals every kind, every kill phase and every drain phase; the reboot only in slot 1's", () => {
    for (const slot of [1, 2]) {
      const deck = new Deck(rng(11, slot), slot, 1);
      const first = new Set<string>();
      for (let i = 0; i < 40; i++) first.add(label(deck.draw()!));
      for (const p of KILL_PHASES) expect(first).toContain(`kill@${p}`);
      for (const p of DRAIN_PHASES) expect(first).toContain(`drain@${p}`);
      expect(first).toContain("drain@listening");
      for (const k of ["token-revoked", "clone-fail", "no-ip", "start-failure", "crash-fault", "vm-killed@boot", "vm-killed@job", "ssh-drop@job", "runner-exit@run", "runner-retired@run", "state-lost@between", "state-garbage@between", "stale-lock@between", "github-drop-jit", "github-429-jit"]) {
        expect([...first].some((c) => c === k || c.startsWith(`${k}@`))).toBe(true);
      }
      expect([...first].some((c) => c.startsWith("reboot"))).toBe(slot === 1);
    }
  });

  test("the fault rate is the share of spawns that get a card", () => {
    const deck = new Deck(rng(5, 1), 1, 0.3);
    const got = Array.from({ length: 2000 }, () => deck.draw()).filter(Boolean).length;
    expect(got / 2000).toBeGreaterThan(0.26);
    expect(got / 2000).toBeLessThan(0.34);
  });
});
