// tart ip NAME [--wait N] [--resolver dhcp|arp|agent] (IP.swift). dhcp reads
// the bootpd lease file, so it answers as soon as the guest has a lease, and
// with a stale lease for a stopped VM; arp answers for a running guest that
// has an address; agent once the guest agent answers (AgentResolver.swift:
// one ResolveIP call with a 1 s limit per try, so a try before the agent
// answers takes that second before the usual 1 s sleep).
// As tart does, it tries, sleeps 1 s, and tries again until the deadline:
// even `--wait 0` takes a second to fail.
import { choiceOpt, parseArgs, positional, uintOpt, type CommandSpec } from "../args.ts";
import { RuntimeError } from "../errors.ts";
import { openLocalVM, readVMConfig, sleep } from "../home.ts";
import { leasedAddress } from "../leases.ts";
import { runState } from "../running.ts";

export const spec: CommandSpec = {
  name: "ip",
  usage: "<name> [--wait <wait>] [--resolver <resolver>]",
  args: ["<name>"],
  flags: { wait: { kind: "string", value: "<wait>" }, resolver: { kind: "string", value: "<resolver>" } },
};

type Resolver = "dhcp" | "arp" | "agent";

function resolve(dir: string, resolver: Resolver): string | undefined {
  if (resolver === "dhcp") return leasedAddress(readVMConfig(dir).macAddress);
  const state = runState(dir);
  return resolver === "arp" || state?.agent ? state?.ip : undefined;
}

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  const wait = uintOpt(p, "wait", "<wait>", 65535) ?? 0;
  const resolver = choiceOpt(p, "resolver", ["dhcp", "arp", "agent"] as const, "dhcp");
  const dir = openLocalVM(positional(p, 0));
  const waitUntil = Date.now() + wait * 1000;
  do {
    const ip = resolve(dir, resolver);
    if (ip) {
      console.log(ip);
      return;
    }
    if (resolver === "agent") await sleep(1000);
    await sleep(1000);
  } while (Date.now() < waitUntil);
  let message = "no IP address found";
  if (!runState(dir)) message += ", is your VM running?";
  if (resolver === "agent") message += " (also make sure that Guest agent for Tart is running inside of a VM)";
  throw new RuntimeError(message);
}
