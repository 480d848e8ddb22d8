#!/usr/bin/env bun
// loop: one cycle of a VM slot; launchd starts it again after every exit.
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { stopOnSignals } from "../lib/core/signals.ts";
import { openSlot } from "../lib/slot/context.ts";
import { loop, pacedExit } from "../lib/slot/loop.ts";

export const spec = {
  name: "loop",
  summary: "serve one job on a slot: recover, (clone+boot || token), ssh-run, cleanup; exits so launchd starts the next cycle",
  options: {},
  exits: {
    failure: "the cycle failed (VM, SSH, runner); cleaned up and backed off; launchd starts it again",
    "bad-input": "GitHub or tart answered something unexpected; cleaned up and backed off",
    "state-io": "host.state_dir cannot be written (full disk?); cleaned up from memory and backed off",
    tempfail: "the slot is in use by another loop, GitHub is unavailable or rate limited, or another VM holds a VM place (backed off)",
    "no-job": "the runner ended without a job (not a retirement by GitHub); backed off",
    lost: "the VM or the runner died while the job ran (the job is reported in the log: re-run it); backed off",
    timeout: "the runner did not listen within runner.listen_timeout, or the job outran runner.job_timeout",
    "host-key": "the guest's host key does not match vm.ssh.known_hosts_path; backed off",
    "local-network": "macOS Local Network privacy refused the connection to the guest (vm.transport: ssh); backed off",
    unavailable: "tart is not installed (host.tart_path)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

export async function main({ common }: Parsed<typeof spec.options>): Promise<number> {
  // Aborted once the signals are ours and one came: a bootout during the pause before an exit ends the pause.
  const stopped = new AbortController();
  return pacedExit(async () => {
    const ctx = openSlot(common, spec.name);
    const stop = stopOnSignals(ctx.log);
    stop.drain.addEventListener("abort", () => stopped.abort(), { once: true });
    return loop(ctx, stop);
  }, { signal: stopped.signal });
}

if (import.meta.main) await runCli(spec, main);
