// Who a host is and what it may see: the registry password lives only in the
// environment of the tart calls that talk to the registry.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import type { World } from "../../sim/world.ts";
import { enqueue, fileWorld, github, logText, loopBinary, nothingLeft, slots, slotState, start, until } from "./harness.ts";

let world: World;
beforeAll(async () => {
  world = await fileWorld();
});
afterAll(() => world?.stop());

/** The environment of the running `tart run` of a VM, read from /proc (what `ps eww` shows on a Mac). */
function runEnvironment(vm: string): Record<string, string> | undefined {
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (!(argv.includes("run") && argv.includes(vm))) continue;
      const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter(Boolean);
      return Object.fromEntries(env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return undefined;
}

describe("registry credentials", () => {
  test.concurrent("in the environment of clone only: the `tart run` of a job has no registry password, not even one the loop inherited", async () => {
    const s = slots(world);
    const password = world.registry!.password;
    // The loop's own environment carries a wrong password: clone must use image.password_path's,
    // and `tart run` must carry neither.
    const inherited = "inherited-wrong-password";
    const { id } = await enqueue(s, "holds-the-vm", "sleep 4; echo ok");
    const run = loopBinary(s, 1, { TART_REGISTRY_USERNAME: world.registry!.username, TART_REGISTRY_PASSWORD: inherited });
    try {
      const vm = await until("the job running", async () => {
        const j = (await github(s)).jobs.find((x) => x.id === id);
        return j?.status === "in_progress" && (slotState(s)?.vm as string | undefined);
      }, 60_000, 100);
      const env = await until("the VM's tart run process", () => runEnvironment(vm), 10_000, 50);
      expect(env.TART_HOME).toBe(s.host.tartHome); // the right process
      expect(Object.keys(env).filter((k) => k.startsWith("TART_REGISTRY_"))).toEqual([]);
      expect(Object.values(env).join("\n")).not.toContain(password);
      expect(Object.values(env).join("\n")).not.toContain(inherited);
      expect((await run.done).code).toBe(0);
      expect((await github(s)).jobs.find((x) => x.id === id)?.result).toBe("Succeeded");
    } catch (err) {
      run.child.kill("SIGTERM");
      console.error(logText(run.lines()));
      throw err;
    }
    // The VM the cycle started ahead for the next one.
    expect((await start(world, "cleanup", ["--slot", "1", "--config", s.path], s.host.env).done).code).toBe(0);
    await nothingLeft(s);
  }, 90_000);
});
