// What every step CLI opens first. Every wait and time reading goes through
// `clock`: the system's on a host, one the cycle tests move themselves.
import type { CommonFlags } from "../core/cli.ts";
import { loadConfig, type Config } from "../config/index.ts";
import { UsageError } from "../core/errors.ts";
import { createLogger, type Logger } from "../core/log.ts";
import { hostId, slotNames, type SlotNames } from "../config/names.ts";
import type { ImageRef } from "../image/oci-ref.ts";
import { RegistryClient, type RegistryCredentials } from "../image/registry.ts";
import { readSecretFile } from "../core/secrets.ts";
import { TartCli, type Tart } from "../vm/tart.ts";
import type { GitHubClient } from "../github/client.ts";
import type { Stop } from "../core/signals.ts";
import { systemClock, type Clock } from "../core/wait.ts";
import type { SlotMetrics } from "../host/metrics/index.ts";
import type { SlotStore } from "./state.ts";

export interface SlotContext {
  config: Config;
  slot: number;
  log: Logger;
  tart: Tart;
  names: SlotNames;
  clock: Clock;
}

/** While its loop runs. */
export interface SlotRun extends SlotContext {
  store: SlotStore;
  gh: () => GitHubClient;
  stop: Stop;
  metrics: SlotMetrics;
}

export function registryCredentials(config: Config): RegistryCredentials | undefined {
  const { image } = config;
  if (!image.username || !image.passwordPath) return undefined;
  return { username: image.username, password: readSecretFile(image.passwordPath, "image.password_path") };
}

/** `extraEnv` (e.g. another TART_HOME) for every call. */
export function tartFor(config: Config, extraEnv: Record<string, string> = {}): Tart {
  // `pull` manages the image cache (it keeps the rollback image), not clone's automatic pruning.
  const env: Record<string, string> = { TART_NO_AUTO_PRUNE: "1", ...extraEnv };
  const { image } = config;
  const creds = registryCredentials(config);
  const host = image.ref.includes("/") ? image.ref.split("/")[0] : undefined;
  // In the environment of clone and pull, never argv.
  const credentials = creds && {
    TART_REGISTRY_USERNAME: creds.username,
    TART_REGISTRY_PASSWORD: creds.password,
    ...(host && { TART_REGISTRY_HOSTNAME: host }),
  };
  return new TartCli({ path: config.host.tartPath, env, ...(credentials && { credentials }), insecure: image.insecure });
}

export function registryFor(config: Config, repo: ImageRef): RegistryClient {
  return new RegistryClient({
    host: repo.host,
    insecure: config.image.insecure,
    credentials: registryCredentials(config),
    credentialsSource: "image.username and image.password_path",
  });
}

export function openSlot(common: CommonFlags, command: string): SlotContext {
  if (common.slot === undefined) throw new UsageError(`${command}: --slot N is required`);
  const config = loadConfig({ path: common.config });
  if (common.slot > config.host.slots) {
    throw new UsageError(`${command}: --slot ${common.slot} but host.slots is ${config.host.slots} in ${config.file}`);
  }
  const log = createLogger({ verbose: common.verbose, fields: { slot: common.slot } });
  const host = hostId(config.host.id, config.host.stateDir, (id, from) =>
    log.info("host.id_pinned", `host id "${id}" (from ${from}) pinned in ${config.host.stateDir}/host-id; names keep it even if the hostname changes`));
  return { config, slot: common.slot, log, tart: tartFor(config), names: slotNames(config.runner.namePrefix, common.slot, host), clock: systemClock };
}
