#!/usr/bin/env bun
// ssh-run: start the actions runner in the guest with the JIT config on stdin
// (`token --slot 1 | ssh-run --slot 1 --ip IP`) and wait for its one job.
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { openSlot } from "../lib/slot/context.ts";
import { exitCode, UsageError } from "../lib/core/errors.ts";
import { registerJitConfig } from "../lib/github/jit-config.ts";
import { OUTCOME_EXIT, startRun } from "../lib/runner/run.ts";

export const spec = {
  name: "ssh-run",
  summary: "run the actions runner in the guest over vm.transport (tart exec, or ssh; JIT config read from stdin) and wait for its job",
  options: {
    vm: { type: "string", value: "NAME", description: "the VM (required for vm.transport exec)" },
    ip: { type: "string", value: "IP", description: "the guest's address (required for vm.transport ssh)" },
  },
  exits: {
    "job-failed": "the job ran and completed with a result other than Succeeded",
    "no-job": "the runner exited without running a job (e.g. GitHub removed the idle runner), or another listener holds its session",
    lost: "the SSH session failed or was lost while the job ran (VM died, network), or the runner itself died",
    timeout: "the runner did not listen within runner.listen_timeout, the job outran runner.job_timeout, or the runner did not exit within runner.exit_timeout after its job",
    "host-key": "the guest's host key does not match vm.ssh.known_hosts_path; refused",
    stopped: "stopped by a signal before a job started",
    "local-network": "vm.transport ssh: macOS Local Network privacy refused the connection to the guest (No route to host)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

async function readStdinJit(): Promise<string> {
  const text = (await new Response(Bun.stdin.stream()).text()).trim();
  if (!text) throw new UsageError("ssh-run: expected the JIT config on stdin (the JSON from `token`, or the bare encoded config)");
  let jit: string | undefined = text;
  if (text.startsWith("{")) {
    try {
      jit = (JSON.parse(text) as { encoded_jit_config?: unknown }).encoded_jit_config as string | undefined;
    } catch {
      throw new UsageError("ssh-run: stdin starts like JSON but is not JSON; pipe the output of `token`");
    }
  }
  if (typeof jit !== "string" || !jit) throw new UsageError("ssh-run: the JSON on stdin has no encoded_jit_config");
  return jit;
}

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number> {
  const { config, log, tart, clock } = openSlot(common, spec.name);
  if (config.vm.transport === "exec" && !values.vm) throw new UsageError("ssh-run: --vm NAME is required (vm.transport: exec)");
  if (config.vm.transport === "ssh" && !values.ip) throw new UsageError("ssh-run: --ip IP is required (vm.transport: ssh)");
  const jit = await readStdinJit();
  registerJitConfig(jit);
  const run = startRun({ config, vm: values.vm ?? "", ip: values.ip ?? "", tart, jitConfig: jit, log, clock });
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(sig, () => run.stop());
  return exitCode(OUTCOME_EXIT[(await run.done).kind]);
}

if (import.meta.main) await runCli(spec, main);
