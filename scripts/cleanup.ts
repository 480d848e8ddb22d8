#!/usr/bin/env bun
// cleanup: take a slot's runner off GitHub first (so no job is handed to a
// runner whose VM is about to die), then force its VM off and delete it.
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { openSlot } from "../lib/slot/context.ts";
import { UsageError } from "../lib/core/errors.ts";
import { githubFor, type GitHubClient } from "../lib/github/client.ts";
import { cleanSlot, type Leftovers } from "../lib/slot/clean.ts";
import { deleteGoldens } from "../lib/slot/snapshot.ts";
import { lockSlot } from "../lib/slot/lock.ts";
import { SlotStore } from "../lib/slot/state.ts";

export const spec = {
  name: "cleanup",
  summary: "remove a slot's runner from GitHub, then stop and delete its VM (defaults from the slot's state file)",
  options: {
    vm: { type: "string", value: "NAME", description: "VM to remove (default: the state file's)" },
    "runner-id": { type: "string", value: "ID", description: "runner to remove (default: the state file's)" },
    sweep: { type: "boolean", description: "also remove every other VM of this slot that tart lists" },
    golden: { type: "boolean", description: "also delete the slot's suspended golden VMs (vm.start: snapshot); install --remove passes it" },
  },
  exits: {
    usage: "bad flags, or a VM or runner whose name is not this slot's (refused, untouched)",
    tempfail: "the slot is in use by a running loop (stop its agent first), or GitHub is unavailable",
    unavailable: "tart is not installed (host.tart_path)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<void> {
  const ctx = openSlot(common, spec.name);
  const { config, slot, tart, names } = ctx;
  const lock = lockSlot(config.host.stateDir, slot);
  try {
    const store = new SlotStore(config.host.stateDir, slot, ctx.clock);
    const s = store.current;
    const id = values["runner-id"];
    if (id !== undefined && !/^[1-9]\d*$/.test(id)) throw new UsageError(`cleanup: --runner-id must be a positive integer, got '${id}'`);
    const runnerId = id === undefined ? undefined : Number(id);
    const explicit = values.vm !== undefined || runnerId !== undefined;
    const target: Leftovers = explicit ? { vm: values.vm, runnerId } : { vm: s.vm, runnerId: s.runner_id, runnerName: s.runner_name, runnerGone: s.runner_gone };
    let client: GitHubClient | undefined;
    const gh = () => (client ??= githubFor(config, ctx.log));
    const { ghost } = await cleanSlot(ctx, gh, target, { why: "cleanup by hand" });
    const vms = new Set<string>(explicit ? [] : [...s.dispose, ...(s.next_vm ? [s.next_vm.name] : [])]);
    if (values.sweep) for (const v of await tart.list()) if (names.owns(v.Name) && v.Name !== target.vm) vms.add(v.Name);
    for (const vm of vms) await cleanSlot(ctx, gh, { vm }, { why: "leftover VM" });
    // A golden outlives restarts of the slot on purpose: only asked for, it goes.
    if (values.golden) {
      await deleteGoldens(ctx);
      store.write({ golden: undefined });
    }
    if (!explicit) {
      store.write({ phase: "idle", vm: undefined, runner_id: undefined, runner_name: undefined, runner_gone: undefined, next_vm: undefined, dispose: [], ghosts: ghost ? [...s.ghosts, ghost] : s.ghosts });
    }
  } finally {
    lock.release();
  }
}

if (import.meta.main) await runCli(spec, main);
