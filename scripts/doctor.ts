#!/usr/bin/env bun
// doctor: one line per check: PASS|WARN|FAIL|SKIP <check>: <what was found>; <what to do>
import { realpathSync } from "node:fs";
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { loadConfig, resolveConfigPath, type Config } from "../lib/config/index.ts";
import { tartFor } from "../lib/slot/context.ts";
import { runDoctor, formatResult, type DoctorContext } from "../lib/host/doctor/index.ts";
import { exitCode } from "../lib/core/errors.ts";
import { currentHostId } from "../lib/config/names.ts";
import { runArgv } from "../lib/core/proc.ts";
import type { Tart } from "../lib/vm/tart.ts";

export const spec = {
  name: "doctor",
  summary: "check everything a slot needs (config, secrets, this binary's signature, tart, GUI session, agents, VMs, disk, DHCP, network, GitHub, registry, image, runner version); changes nothing",
  options: {
    json: { type: "boolean", description: "print the results as JSON" },
  },
  exits: {
    failure: "at least one check FAILed (each FAIL line says what to do)",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

/** Per check that calls out (a command, GitHub, the registry). */
const CHECK_TIMEOUT_MS = 15_000;

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number | void> {
  const configPath = resolveConfigPath(common.config);
  let config: Config | undefined;
  let configError: unknown;
  let tart: Tart | undefined;
  try {
    config = loadConfig({ path: common.config });
  } catch (err) {
    configError = err;
  }
  try {
    tart = config && tartFor(config);
  } catch {
    // An unreadable registry password: the secrets check reports it; tart checks are skipped.
  }
  const ctx: DoctorContext = {
    config, configPath, tart, platform: process.platform, uid: process.getuid?.() ?? 0, env: process.env, run: runArgv(CHECK_TIMEOUT_MS),
    binaryPath: Bun.isStandaloneExecutable ? realpathSync(process.execPath) : undefined, host: config ? currentHostId(config.host.id, config.host.stateDir) : "", timeoutMs: CHECK_TIMEOUT_MS,
  };
  const results = await runDoctor(ctx, configError);
  const failed = results.filter((r) => r.status === "FAIL").length;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ok: failed === 0, failed, results }, null, 2)}\n`);
  } else {
    process.stdout.write(`${results.map(formatResult).join("\n")}\n`);
    const count = (s: string) => results.filter((r) => r.status === s).length;
    process.stdout.write(`\n${count("PASS")} pass, ${count("WARN")} warn, ${failed} fail, ${count("SKIP")} skip\n`);
  }
  return failed > 0 ? exitCode("failure") : exitCode("ok");
}

if (import.meta.main) await runCli(spec, main);
