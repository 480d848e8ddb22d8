#!/usr/bin/env bun
// cleanup: stop and delete the slot's VM, and remove its runner from GitHub
// unless the runner already de-registered itself. Idempotent.
//   cleanup --slot 1            # whatever the slot's state file names
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/cli.ts";
import type { Config } from "../lib/config.ts";
import { openSlot } from "../lib/context.ts";
import { MacosRunnerError, UsageError } from "../lib/errors.ts";
import { githubFor, type GitHubClient } from "../lib/github/client.ts";
import { deleteRunner, findRunnerByName } from "../lib/github/runners.ts";
import type { Logger } from "../lib/log.ts";
import { isSlotsOwn } from "../lib/names.ts";
import { SlotStore, type SlotState } from "../lib/slot.ts";
import type { Tart } from "../lib/tart.ts";

export const spec = {
  name: "cleanup",
  summary: "stop and delete a slot's VM and remove its runner from GitHub (defaults from the slot's state file)",
  options: {
    vm: { type: "string", value: "NAME", description: "VM to remove (default: the state file's)" },
    "runner-id": { type: "string", value: "ID", description: "runner to remove (default: the state file's)" },
    sweep: { type: "boolean", description: "also remove every other VM of this slot that tart lists" },
  },
  exits: {
    tempfail: "something could not be removed yet (busy runner, GitHub down); run again",
    unavailable: "tart is not installed (host.tart_path)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

export class NotThisSlotsError extends MacosRunnerError {
  constructor(what: string, name: string, slot: number) {
    super(`refusing to remove ${what} ${name}: its name does not carry this host's prefix and slot ${slot}`, { kind: "usage" });
  }
}

export class RunnerStillBusyError extends MacosRunnerError {
  constructor(id: number, waitedMs: number) {
    super(`runner ${id} is still busy on GitHub after ${waitedMs} ms; the next start of the slot will try again`, { kind: "tempfail" });
  }
}

export interface CleanupTarget {
  vm?: string;
  runnerId?: number;
  runnerName?: string;
  /** The runner finished its job, so GitHub removed it: no API call needed. */
  runnerGone?: boolean;
}

const BUSY_RETRY_MS = 60_000;

export function targetFromState(s: SlotState | undefined): CleanupTarget {
  return { vm: s?.vm, runnerId: s?.runner_id, runnerName: s?.runner_name, runnerGone: s?.runner_gone };
}

export async function cleanup(o: {
  config: Config;
  slot: number;
  tart: Tart;
  log: Logger;
  target: CleanupTarget;
  gh?: GitHubClient;
  sweep?: boolean;
}): Promise<void> {
  const { namePrefix } = o.config.runner;
  const log = o.log.child({ phase: "cleanup" });
  const started = Date.now();
  const vms = new Set<string>();
  if (o.target.vm) {
    if (!isSlotsOwn(o.target.vm, namePrefix, o.slot)) throw new NotThisSlotsError("VM", o.target.vm, o.slot);
    vms.add(o.target.vm);
  }
  if (o.sweep) {
    for (const v of await o.tart.list()) if (isSlotsOwn(v.Name, namePrefix, o.slot)) vms.add(v.Name);
  }
  for (const vm of vms) {
    await o.tart.stop(vm);
    await o.tart.delete(vm);
    log.info("cleanup.vm_deleted", `VM ${vm} stopped and deleted`, { vm });
  }

  if (!o.target.runnerGone && (o.target.runnerId !== undefined || o.target.runnerName)) {
    const name = o.target.runnerName;
    if (name && !isSlotsOwn(name, namePrefix, o.slot)) throw new NotThisSlotsError("runner", name, o.slot);
    const gh = o.gh ?? githubFor(o.config, o.log);
    let id = o.target.runnerId;
    if (id === undefined && name) id = (await findRunnerByName(gh, name))?.id;
    if (id !== undefined) {
      const until = Date.now() + BUSY_RETRY_MS;
      for (;;) {
        const outcome = await deleteRunner(gh, id);
        if (outcome !== "busy") {
          log.info("cleanup.runner_removed", outcome === "deleted" ? `runner ${id} deleted from GitHub` : `runner ${id} was already gone`, { runner: name, runner_id: id });
          break;
        }
        if (Date.now() > until) throw new RunnerStillBusyError(id, BUSY_RETRY_MS);
        log.info("cleanup.runner_busy", `runner ${id} still busy on GitHub; retrying`, { runner: name, runner_id: id });
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }
  log.info("cleanup.done", "slot clean", { duration_ms: Date.now() - started });
}

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number | void> {
  const { config, slot, log, tart } = openSlot(common, spec.name);
  const state = new SlotStore(config.host.stateDir, slot).read();
  let runnerId: number | undefined;
  if (values["runner-id"] !== undefined) {
    runnerId = Number(values["runner-id"]);
    if (!Number.isInteger(runnerId) || runnerId <= 0) throw new UsageError(`cleanup: --runner-id must be a positive integer, got '${values["runner-id"]}'`);
  }
  const explicit = values.vm !== undefined || runnerId !== undefined;
  const target = explicit ? { vm: values.vm, runnerId } : targetFromState(state);
  await cleanup({ config, slot, tart, log, target, sweep: Boolean(values.sweep) });
}

if (import.meta.main) await runCli(spec, main);
