#!/usr/bin/env bun
// token: a JIT runner config for this slot (1 API call in steady state).
import { closeSync, constants, fstatSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../lib/core/cli.ts";
import { openSlot } from "../lib/slot/context.ts";
import { UsageError } from "../lib/core/errors.ts";
import { githubFor } from "../lib/github/client.ts";
import { createRegistrationToken, token } from "../lib/github/runners.ts";

export const spec = {
  name: "token",
  summary: "create a just-in-time runner config for a slot (writes JSON with the secret config to stdout or --output)",
  options: {
    name: { type: "string", value: "NAME", description: "runner name (default <prefix>-<host>-<slot>-<random>)" },
    output: { type: "string", value: "FILE", description: "write the JSON to FILE (mode 0600) instead of stdout" },
    "registration-token": { type: "boolean", description: "print a registration token for config.sh instead" },
  },
  exits: {
    config: "config invalid, or GitHub refused the credentials/permissions (the message says what to fix)",
    tempfail: "GitHub unavailable or rate limited; try again later",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

/** Opened without truncating, so a refused file (readable by others) keeps its content. */
function writeSecretFile(path: string, text: string): void {
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT, 0o600);
  try {
    const mode = fstatSync(fd).mode & 0o777;
    if (mode & 0o077) throw new UsageError(`token: ${path} exists with mode ${mode.toString(8).padStart(4, "0")}, readable by others; not writing a secret there (chmod 600 it or pick a new file)`);
    ftruncateSync(fd, 0);
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

export async function main({ values, common }: Parsed<typeof spec.options>): Promise<number | void> {
  const { config, log, names } = openSlot(common, spec.name);
  if (!values.output && process.stdout.isTTY) {
    throw new UsageError("token: refusing to print a secret to a terminal; pipe it or use --output FILE");
  }
  const emit = (json: object) => {
    const text = `${JSON.stringify(json)}\n`;
    if (values.output) writeSecretFile(values.output, text);
    else process.stdout.write(text);
  };
  if (values["registration-token"]) {
    const t = await createRegistrationToken(githubFor(config, log));
    emit({ token: t.token, expires_at: t.expiresAt });
    log.info("token.registration", "registration token created", { phase: "token" });
    return;
  }
  const jit = await token({ config, names, name: values.name ?? names.next(), log });
  emit({ runner_id: jit.runner.id, runner_name: jit.runner.name, encoded_jit_config: jit.encodedJitConfig });
}

if (import.meta.main) await runCli(spec, main);
