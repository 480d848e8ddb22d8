#!/usr/bin/env bun
// retention: keeps the newest N images (digests) of each golden-image repository in the
// VM registry and deletes the rest by digest; then the registry's garbage
// collector frees their blobs. Runs where the registry is administered, with
// credentials that may delete: runner hosts (and their pull) only read.
//   retention --registry reg.example.com --keep 4 --username admin --password-file ~/.config/registry-admin
//   retention ... --gc-config /etc/docker/registry/config.yml    # registry read-only or stopped
import { runCli, type CommandSpec, type OptionSpec, type Parsed } from "../../lib/core/cli.ts";
import { UsageError, exitCode } from "../../lib/core/errors.ts";
import { createLogger } from "../../lib/core/log.ts";
import { garbageCollect, openRegistry, retain } from "./run.ts";

export const spec = {
  name: "retention",
  summary: "keep the newest N images (digests, with all their tags) per repository in the VM registry, delete the others by digest, then garbage-collect",
  common: false,
  options: {
    registry: { type: "string", value: "HOST[:PORT]", description: "the registry (required)" },
    keep: { type: "string", value: "N", description: "images to keep per repository, newest by upload time, with every tag on them (required, at least 1; 2+ keeps hosts' rollback images pullable)" },
    repository: { type: "string", value: "NAME", multiple: true, description: "only this repository (repeatable; default: every repository in the catalog)" },
    username: { type: "string", value: "USER", description: "registry user allowed to delete" },
    "password-file": { type: "string", value: "PATH", description: "file holding that user's password (mode 0600)" },
    insecure: { type: "boolean", description: "plain HTTP" },
    "dry-run": { type: "boolean", description: "print what would be deleted, delete nothing" },
    "gc-config": { type: "string", value: "PATH", description: "then run `docker-registry garbage-collect -m PATH` (the registry must be read-only or stopped)" },
    "gc-binary": { type: "string", value: "PATH", description: "the registry binary for garbage-collect (default docker-registry; `registry` for the native binary)" },
    verbose: { type: "boolean", description: "log debug events too" },
  },
  exits: {
    failure: "garbage-collect failed (its output is in the log line)",
    "bad-input": "the registry answered something unexpected",
    tempfail: "the registry is unreachable or failing",
    config: "the registry refused the credentials (or they may not delete: storage.delete.enabled), or the password file is not 0600",
  },
} satisfies CommandSpec<Record<string, OptionSpec>>;

export async function main({ values }: Parsed<typeof spec.options>): Promise<number | void> {
  const log = createLogger({ verbose: Boolean(values.verbose), fields: { phase: "retention" } });
  if (!values.registry) throw new UsageError("retention: --registry HOST[:PORT] is required");
  if (!values.keep || !/^[1-9]\d*$/.test(values.keep)) throw new UsageError(`retention: --keep N must be a whole number of at least 1, got '${values.keep ?? ""}'`);
  if (Boolean(values.username) !== Boolean(values["password-file"])) throw new UsageError("retention: --username and --password-file go together");
  const registry = openRegistry({ host: values.registry, insecure: values.insecure, username: values.username, passwordFile: values["password-file"] });
  const deleted = await retain(registry, { keep: Number(values.keep), repositories: values.repository, dryRun: Boolean(values["dry-run"]), log });
  if (values["dry-run"] || deleted === 0) return exitCode("ok");

  const gcBinary = values["gc-binary"] ?? "docker-registry";
  if (!values["gc-config"]) {
    process.stdout.write(
      `Deleted manifests keep their blobs until garbage collection. Set storage.maintenance.readonly.enabled: true (or stop the registry), then run:\n  ${gcBinary} garbage-collect -m <registry config.yml>\nand turn read-only off again.\n`,
    );
    return exitCode("ok");
  }
  await garbageCollect(gcBinary, values["gc-config"], log);
  return exitCode("ok");
}

if (import.meta.main) await runCli(spec, main);
