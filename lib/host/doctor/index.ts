// Every doctor check, in the order a host's problems are best read.
import { knownHostsCheck, secretsCheck } from "./files.ts";
import { githubChecks, runnerVersionCheck } from "./github.ts";
import { imageChecks } from "./image.ts";
import { agentsCheck, configCheck, diskCheck, guiSessionCheck, signatureCheck, tartCheck, vmsCheck } from "./host.ts";
import { dhcpCheck, localNetworkCheck } from "./network.ts";
import { fail, type Check, type CheckResult, type DoctorContext } from "./types.ts";

export { formatResult, type CheckResult, type DoctorContext } from "./types.ts";

export async function runDoctor(ctx: DoctorContext, configError?: unknown): Promise<CheckResult[]> {
  const checks: [string, Check][] = [
    ["config", configCheck(configError)],
    ["secrets", secretsCheck],
    ["known-hosts", knownHostsCheck],
    ["signature", signatureCheck],
    ["tart", tartCheck],
    ["gui-session", guiSessionCheck],
    ["launchd-agents", agentsCheck],
    ["vm-limit", vmsCheck],
    ["disk", diskCheck],
    ["dhcp", dhcpCheck],
    ["local-network", localNetworkCheck],
    ["github", githubChecks],
    ["registry", imageChecks],
    ["runner-version", runnerVersionCheck],
  ];
  const results: CheckResult[] = [];
  for (const [name, check] of checks) {
    try {
      results.push(...(await check(ctx)));
    } catch (err) {
      results.push(fail(name, `the check itself failed: ${(err as Error).message}`, "report this; the other checks still ran"));
    }
  }
  return results;
}
