// A retention run against a registry (the `retention` command): connect with
// credentials that may delete, apply the rule (retention.ts) to each
// repository, printing what it keeps and deletes, and run the registry's
// garbage collector to free the deleted images' blobs.
import { secretFile } from "../../lib/config/values.ts";
import { MacosRunnerError } from "../../lib/core/errors.ts";
import type { Logger } from "../../lib/core/log.ts";
import { finished, sh } from "../../lib/core/proc.ts";
import { readSecretFile } from "../../lib/core/secrets.ts";
import { RegistryClient } from "../../lib/image/registry.ts";
import { applyRetention, describeTags, planRetention } from "./retention.ts";

/** A registry of many terabytes takes long to mark and sweep; a hung one is killed after this. */
const GC_TIMEOUT_MS = 3_600_000;

/** The registry client, with the password read from its 0600 file when a user is given. */
export function openRegistry(o: { host: string; insecure: boolean | undefined; username: string | undefined; passwordFile: string | undefined }): RegistryClient {
  let credentials;
  if (o.username && o.passwordFile) {
    let path: string;
    try {
      path = secretFile(o.passwordFile, { home: process.env.HOME, dir: process.cwd() });
    } catch (err) {
      throw new MacosRunnerError(`--password-file: ${(err as Error).message}`, { kind: "config" });
    }
    credentials = { username: o.username, password: readSecretFile(path, "--password-file") };
  }
  return new RegistryClient({ host: o.host, insecure: o.insecure, credentials, credentialsSource: "--username and --password-file" });
}

/** Keeps the newest `keep` images of each repository (default: the catalog's) and deletes the rest, unless dry; returns how many digests went (or would go). */
export async function retain(registry: RegistryClient, o: { keep: number; repositories: string[] | undefined; dryRun: boolean; log: Logger }): Promise<number> {
  const repositories = o.repositories ?? (await registry.listRepositories());
  let deleted = 0;
  for (const repository of repositories) {
    const plan = planRetention(repository, await describeTags(registry, repository), o.keep);
    const say = (line: string) => process.stdout.write(`${line}\n`);
    say(`${repository}: keep ${plan.keep.map((t) => t.tag).join(", ") || "nothing"}`);
    for (const t of plan.undated) say(`${repository}: keep ${t.tag} (no upload time to rank it by)`);
    for (const r of plan.remove) say(`${repository}: ${o.dryRun ? "would delete" : "delete"} ${r.digest} (${r.tags.join(", ")})`);
    if (!o.dryRun) await applyRetention(registry, plan, o.log);
    deleted += plan.remove.length;
  }
  return deleted;
}

/** `<binary> garbage-collect -m <config>`; the registry must be read-only or stopped. */
export async function garbageCollect(binary: string, config: string, log: Logger): Promise<void> {
  const gc = await finished(sh({ timeoutMs: GC_TIMEOUT_MS })`${binary} garbage-collect -m ${config}`);
  if (gc.code !== 0) {
    const why = (gc.stderr || gc.stdout).trim().split("\n").slice(-3).join(" | ");
    const how = gc.timedOut ? `was killed after ${GC_TIMEOUT_MS / 60_000} min` : `failed (exit ${gc.code})`;
    throw new MacosRunnerError(`${binary} garbage-collect -m ${config} ${how}: ${why}`);
  }
  log.info("retention.gc", `garbage-collected with ${config}`);
}
