// What every step CLI opens first: the config, the slot number, a logger
// carrying the slot, this slot's names (host id pinned), and a tart wrapper
// with the registry credentials.
import { readFileSync } from "node:fs";
import type { CommonFlags } from "./cli.ts";
import { loadConfig, type Config } from "./config.ts";
import { UsageError } from "./errors.ts";
import { createLogger, type Logger } from "./log.ts";
import { hostId, slotNames, type SlotNames } from "./names.ts";
import { registerSecret } from "./redact.ts";
import { Tart } from "./tart.ts";

export interface SlotContext {
  config: Config;
  slot: number;
  log: Logger;
  tart: Tart;
  names: SlotNames;
}

export function tartFor(config: Config): Tart {
  const env: Record<string, string> = {};
  const { image } = config;
  if (image.username && image.passwordPath) {
    const password = readFileSync(image.passwordPath, "utf8").trim();
    registerSecret(password);
    // Passed in tart's environment, never argv.
    env.TART_REGISTRY_USERNAME = image.username;
    env.TART_REGISTRY_PASSWORD = password;
    const host = image.ref.split("/")[0];
    if (host && image.ref.includes("/")) env.TART_REGISTRY_HOSTNAME = host;
  }
  return new Tart({ path: config.host.tartPath, env, insecure: image.insecure });
}

export function openSlot(common: CommonFlags, command: string): SlotContext {
  if (common.slot === undefined) throw new UsageError(`${command}: --slot N is required`);
  const config = loadConfig({ path: common.config });
  if (common.slot > config.host.slots) {
    throw new UsageError(`${command}: --slot ${common.slot} but host.slots is ${config.host.slots} in ${config.file}`);
  }
  const log = createLogger({ verbose: common.verbose, fields: { slot: common.slot } });
  const host = hostId(config.host.id, config.host.stateDir, (id) =>
    log.info("host.id_pinned", `host id "${id}" pinned in ${config.host.stateDir}/host-id; names keep it even if the hostname changes`));
  return { config, slot: common.slot, log, tart: tartFor(config), names: slotNames(config.runner.namePrefix, common.slot, host) };
}
