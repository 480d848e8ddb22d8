// tart ip NAME [--wait N] [--resolver dhcp|arp|agent] (IP.swift). dhcp reads
// the lease file and so answers with a stale lease for a stopped VM; arp and
// agent need the running guest. A running VM has a lease only once booted.
import { choiceOpt, parseArgs, uintOpt, type CommandSpec } from "../args.ts";
import { RuntimeError } from "../errors.ts";
import { openLocalVM, readVMConfig, sleep } from "../home.ts";
import { leaseFor } from "../leases.ts";
import { runState } from "../running.ts";

export const spec: CommandSpec = {
  name: "ip",
  usage: "<name> [--wait <wait>] [--resolver <resolver>]",
  args: ["<name>"],
  flags: { wait: { kind: "string", value: "<wait>" }, resolver: { kind: "string", value: "<resolver>" } },
};

type Resolver = "dhcp" | "arp" | "agent";

function resolve(dir: string, resolver: Resolver): string | undefined {
  const state = runState(dir);
  if (state && !state.booted) return undefined;
  if (resolver !== "dhcp") return state?.ip;
  return leaseFor(readVMConfig(dir).macAddress)?.ip;
}

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  const wait = uintOpt(p, "wait", "<wait>", 65535) ?? 0;
  const resolver = choiceOpt(p, "resolver", ["dhcp", "arp", "agent"] as const, "dhcp");
  const dir = openLocalVM(p.args[0]);
  // tart polls once a second; polling faster finds the address sooner but
  // keeps its deadline.
  const deadline = Date.now() + wait * 1000;
  for (;;) {
    const ip = resolve(dir, resolver);
    if (ip) {
      console.log(ip);
      return;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(50, deadline - Date.now()));
  }
  let message = "no IP address found";
  if (!runState(dir)) message += ", is your VM running?";
  if (resolver === "agent") message += " (also make sure that Guest agent for Tart is running inside of a VM)";
  throw new RuntimeError(message);
}
