// tart pull REF: always asks the registry; a local name has nothing to pull.
import { parseArgs, positional, uintOpt, type CommandSpec } from "../args.ts";
import { ValidationError } from "../errors.ts";
import { formatRemoteName, parseRemoteName } from "../oci.ts";
import { pullImage } from "../pull.ts";

export const spec: CommandSpec = {
  name: "pull",
  usage: "<remote-name> [--insecure] [--concurrency <concurrency>]",
  args: ["<remote-name>"],
  flags: { insecure: { kind: "bool" }, concurrency: { kind: "string", value: "<concurrency>" }, deduplicate: { kind: "bool" } },
};

export async function run(argv: string[]): Promise<void> {
  const p = parseArgs(spec, argv);
  const concurrency = uintOpt(p, "concurrency", "<concurrency>") ?? 4;
  if (concurrency < 1) throw new ValidationError("network concurrency cannot be less than 1");
  const ref = positional(p, 0);
  const remote = parseRemoteName(ref);
  if (!remote) {
    console.log(`"${ref}" is a local image, nothing to pull here!`);
    return;
  }
  console.log(`pulling ${formatRemoteName(remote)}...`);
  await pullImage(remote, { insecure: Boolean(p.bool.insecure), concurrency });
}
