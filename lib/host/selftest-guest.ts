// How the selftest runs a command in the guest: through lib/vm/guest.ts, over
// `tart exec` (the tart guest agent, no network) or `ssh` (the system client,
// pinned to the image's host key). The cycle's own checks (runner, sudo,
// clock) go over the transport the slots use (vm.transport); the transport
// checks try both.
import type { Config } from "../config/index.ts";
import { finished, sh, type Finished } from "../core/proc.ts";
import { guestArgv, type Transport } from "../vm/guest.ts";

export type { Transport };

export interface GuestShell {
  transport: Transport;
  /** Runs `command` with /bin/sh in the guest; never a secret in it. */
  run(command: string, timeoutMs: number): Promise<Finished>;
}

/** The transport the slots use to reach a guest. */
export const slotTransport = (config: Config): Transport => config.vm.transport;

export function guestShell(config: Config, transport: Transport, vm: string, ip: string): GuestShell {
  const over = { ...config, vm: { ...config.vm, transport } };
  return {
    transport,
    run: (command, timeoutMs) => finished(sh({ timeoutMs, env: { CI: "true" } })`exec ${guestArgv(over, { vm, ip }, command, { stdin: false })}`),
  };
}
