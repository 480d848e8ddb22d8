// The selftest's checks of a running guest, and that launchd started the agent.
// The runner, sudo and clock checks go over vm.transport, the transport checks over both.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Config } from "../config/index.ts";
import { runnerFreshnessCheck } from "./doctor/github.ts";
import { fail, pass, warn, type CheckResult } from "./doctor/types.ts";
import { SELFTEST_LABEL } from "./launchd/launchctl.ts";
import { leaseFor } from "../vm/leases.ts";
import { finished, sh } from "../core/proc.ts";
import { TIME_SERVER } from "../slot/snapshot.ts";
import { HOST_KEY_ALIAS } from "../vm/ssh.ts";
import { noRouteToHost, runInGuest, sshSettings, type Transport } from "../vm/guest.ts";
import type { Tart } from "../vm/tart.ts";

type GuestShell = ReturnType<typeof guestShell>;

/** Never a secret in `command`. */
export function guestShell(config: Config, tart: Tart, transport: Transport, vm: string, ip: string) {
  const over = { ...config, vm: { ...config.vm, transport } };
  return { transport, run: (command: string, timeoutMs: number) => runInGuest(over, tart, { vm, ip }, command, timeoutMs) };
}

/** More is a hung guest. */
const GUEST_TIMEOUT_MS = 30_000;
/** The runner (.NET) starts slowly on a cold guest. */
const RUNNER_TIMEOUT_MS = 120_000;
/** `date +%s` has whole seconds. */
const CLOCK_TOLERANCE_S = 2;
const LOCAL_NETWORK_FIX = "allow Local Network for macos-runner (System Settings > Privacy & Security > Local Network), or set vm.transport: exec (no network to the guest)";

/** Where ssh, tart and sntp say why they failed. */
const lastLine = (text: string) => text.trim().split("\n").at(-1)?.slice(0, 200) || "no output";

/** launchd names a job in XPC_SERVICE_NAME. */
export function agentSessionCheck(env: NodeJS.ProcessEnv): CheckResult {
  if (env.XPC_SERVICE_NAME === SELFTEST_LABEL) return pass("launchd-agent", `running as the launchd agent ${SELFTEST_LABEL} in the GUI session, as the slots do`);
  return fail("launchd-agent", `not started by launchd (XPC_SERVICE_NAME is ${env.XPC_SERVICE_NAME ? `'${env.XPC_SERVICE_NAME}'` : "unset"}): what it finds is not what a slot meets`, "run `selftest` without --in-agent: it loads the agent itself");
}

async function tartIp(config: Config, vm: string, resolver: "dhcp" | "agent", waitS: number): Promise<{ ip?: string; error?: string }> {
  const r = await finished(sh({ timeoutMs: (waitS + 15) * 1000, env: { CI: "true" } })`exec ${config.host.tartPath} ip ${vm} --resolver ${resolver} --wait ${String(waitS)}`);
  return r.code === 0 && r.stdout.trim() ? { ip: r.stdout.trim() } : { error: lastLine(r.stderr || `exit ${r.code}`) };
}

export async function addressCheck(check: string, config: Config, vm: string, mac: string | undefined, transport: Transport): Promise<CheckResult> {
  const lease = mac ? leaseFor(config.host.dhcpLeasesPath, mac) : undefined;
  const dhcp = await tartIp(config, vm, "dhcp", 1);
  const agent = await tartIp(config, vm, "agent", 2);
  const found = `lease file (${config.host.dhcpLeasesPath}): ${lease ?? "no lease"}; tart ip: ${dhcp.ip ?? `none (${dhcp.error})`}; guest agent: ${agent.ip ?? `none (${agent.error})`}`;
  const ip = lease ?? dhcp.ip;
  if (!ip) return fail(check, found, "the VM has no address: see the dhcp checks (a full pool, a lease time of a day)");
  if (dhcp.ip && lease && dhcp.ip !== lease) return fail(check, `they disagree: ${found}`, "report this: the slots read the lease file, tart reads the same file");
  if (agent.ip && agent.ip !== ip) return fail(check, `the guest agent disagrees: ${found}`, "report this: the guest has another address than its lease (a second interface?)");
  if (!agent.ip) {
    const noAgent = `${found}: the image has no working tart guest agent`;
    return transport === "exec" ? fail(check, noAgent, "install tart-guest-agent in the image, or set vm.transport: ssh") : warn(check, noAgent, "fine with vm.transport: ssh; vm.transport: exec needs tart-guest-agent in the image");
  }
  return pass(check, `all agree on ${ip}`);
}

/** On macOS 15+, Local Network privacy refusing the agent or its children. */
const refusedBeforeSsh = (stderr: string) => noRouteToHost(stderr) || /Host is down|Connection reset by peer|kex_exchange_identification: read: Connection reset/i.test(stderr);

/** `refused`: Local Network privacy refused it, so nothing else can be checked over ssh. */
export async function sshChecks(config: Config, tart: Tart, vm: string, ip: string, transport: Transport): Promise<{ results: CheckResult[]; refused: boolean }> {
  const { port, user } = sshSettings(config);
  const r = await guestShell(config, tart, "ssh", vm, ip).run("echo selftest-ok", GUEST_TIMEOUT_MS);
  const where = `${user}@${ip}:${port}`;
  // Over exec the slots need no ssh.
  const severe = transport === "ssh" ? fail : warn;
  if (r.code === 0 && r.stdout.includes("selftest-ok")) {
    return { refused: false, results: [pass("guest-ssh", `ssh ${where} ran a command`), pass("local-network", `this agent's ssh reached ${ip}: the Local Network grant holds`)] };
  }
  const why = lastLine(r.stderr || `exit ${r.code}`);
  if (refusedBeforeSsh(r.stderr)) {
    const found = `this agent's ssh to ${ip} was refused before SSH answered (${why}): Local Network privacy${transport === "exec" ? "; the slots use vm.transport: exec, which needs no grant" : ""}`;
    return { refused: true, results: [severe("guest-ssh", `ssh ${where}: ${why}`, LOCAL_NETWORK_FIX), severe("local-network", found, LOCAL_NETWORK_FIX)] };
  }
  const reached = pass("local-network", `this agent's ssh reached ${ip} (${why})`);
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/.test(r.stderr)) {
    return { refused: false, results: [severe("guest-ssh", `ssh ${where} refused the guest's host key`, "see the host-key check"), reached] };
  }
  if (/Permission denied/.test(r.stderr)) {
    return { refused: false, results: [severe("guest-ssh", `ssh ${where}: the guest refused vm.ssh.private_key_path's key (${why})`, `put the key's public half in ~${user}/.ssh/authorized_keys in the image`), reached] };
  }
  return { refused: false, results: [severe("guest-ssh", `ssh ${where} failed: ${why}`, "is Remote Login on in the image? (System Settings > General > Sharing)"), warn("local-network", `could not tell: ssh ${where} ended with ${why}`, "run selftest again once ssh works")] };
}

const fingerprint = (key: string) => `SHA256:${createHash("sha256").update(Buffer.from(key, "base64")).digest("base64").replace(/=+$/, "")}`;

export async function hostKeyCheck(config: Config, ip: string): Promise<CheckResult> {
  const { port, knownHostsPath } = sshSettings(config);
  const scan = await finished(sh({ timeoutMs: GUEST_TIMEOUT_MS })`exec /usr/bin/ssh-keyscan -T 10 -p ${String(port)} ${ip}`);
  const presented = scan.stdout.split("\n").flatMap((l) => {
    const [, type, key] = l.trim().split(/\s+/);
    return !l.startsWith("#") && type && key ? [{ type, key }] : [];
  });
  if (presented.length === 0) return fail("host-key", `ssh-keyscan got no host key from ${ip}:${port} (${lastLine(scan.stderr || `exit ${scan.code}`)})`, "is Remote Login on in the image? See guest-ssh");
  let pinned: { type: string; key: string }[] = [];
  try {
    pinned = readFileSync(knownHostsPath, "utf8").split("\n").flatMap((l) => {
      const [hosts, type, key] = l.trim().split(/\s+/);
      return hosts?.split(",").includes(HOST_KEY_ALIAS) && type && key ? [{ type, key }] : [];
    });
  } catch (err) {
    return fail("host-key", `${knownHostsPath} cannot be read (${(err as Error).message})`, "see doctor's known-hosts check");
  }
  const match = presented.find((p) => pinned.some((k) => k.type === p.type && k.key === p.key));
  const shown = presented.map((p) => `${p.type} ${fingerprint(p.key)}`).join(", ");
  if (match) return pass("host-key", `the guest's ${match.type} key ${fingerprint(match.key)} is the one ${knownHostsPath} pins`);
  return fail("host-key", `the guest presents ${shown}; ${knownHostsPath} pins ${pinned.map((k) => `${k.type} ${fingerprint(k.key)}`).join(", ") || "nothing"} under ${HOST_KEY_ALIAS}`,
    `if the image was rebuilt, pin its key: "${HOST_KEY_ALIAS} <type> <key>" from the image's /etc/ssh/ssh_host_ed25519_key.pub; else find out why the guest has another key`);
}

export async function execCheck(config: Config, tart: Tart, vm: string, ip: string, transport: Transport): Promise<CheckResult> {
  const r = await guestShell(config, tart, "exec", vm, ip).run("echo selftest-ok", GUEST_TIMEOUT_MS);
  if (r.code === 0 && r.stdout.includes("selftest-ok")) return pass("guest-exec", `tart exec ${vm} ran a command through the guest agent`);
  const found = `tart exec ${vm} failed: ${lastLine(r.stderr || `exit ${r.code}`)}`;
  if (transport === "exec") return fail("guest-exec", found, "install tart-guest-agent in the image (macos-image-templates' base does), or set vm.transport: ssh");
  return warn("guest-exec", found, "fine with vm.transport: ssh; vm.transport: exec needs tart-guest-agent in the image and tart 2.33.0+");
}

/** startMs: `run.sh --version`, the runner's start without a session. */
export async function runnerCheck(config: Config, shell: GuestShell): Promise<{ result: CheckResult; version?: string; startMs: number }> {
  const started = Date.now();
  const r = await shell.run('cd "$HOME/actions-runner" && ./run.sh --version', RUNNER_TIMEOUT_MS);
  const startMs = Date.now() - started;
  const version = /^v?(\d+\.\d+\.\d+)\s*$/m.exec(r.stdout)?.[1];
  if (r.code !== 0 || !version) {
    return { startMs, result: fail("runner-version", `~/actions-runner/run.sh --version (over ${shell.transport}) gave no version: ${lastLine(r.stderr || r.stdout || `exit ${r.code}`)}`, "unpack the actions runner into ~/actions-runner in the image (not configured)") };
  }
  return { version, startMs, result: await runnerFreshnessCheck(`runner ${version} in the guest`, version, config.image.runnerReleasesUrl, 15_000) };
}

export async function sudoCheck(shell: GuestShell): Promise<CheckResult> {
  const r = await shell.run("sudo -n true", GUEST_TIMEOUT_MS);
  if (r.code === 0) return pass("sudo", "sudo -n true needs no password");
  return fail("sudo", `sudo -n true failed (${lastLine(r.stderr || `exit ${r.code}`)})`, "give the image's user passwordless sudo (/etc/sudoers.d/admin-nopasswd): the clock sync after a restore needs it");
}

/** Guest minus host, in whole seconds. */
async function clockOffset(shell: GuestShell): Promise<number | undefined> {
  const before = Date.now();
  const r = await shell.run("date +%s", GUEST_TIMEOUT_MS);
  const guest = Number(r.stdout.trim());
  if (r.code !== 0 || !Number.isFinite(guest) || r.stdout.trim() === "") return undefined;
  return Math.round(guest - (before + Date.now()) / 2000);
}

const offsetText = (s: number | undefined) => (s === undefined ? "unknown" : s === 0 ? "in step" : `${Math.abs(s)} s ${s < 0 ? "behind" : "ahead"}`);

export async function clockCheck(shell: GuestShell): Promise<{ result: CheckResult; syncMs: number }> {
  const before = await clockOffset(shell);
  const started = Date.now();
  const sync = await shell.run(`sudo sntp -sS ${TIME_SERVER}`, GUEST_TIMEOUT_MS);
  const syncMs = Date.now() - started;
  const after = await clockOffset(shell);
  const found = `guest clock ${offsetText(before)} after the restore; sudo sntp -sS ${TIME_SERVER} ${sync.code === 0 ? `took ${syncMs} ms` : `failed (${lastLine(sync.stderr || `exit ${sync.code}`)})`}; then ${offsetText(after)}`;
  if (after !== undefined && Math.abs(after) <= CLOCK_TOLERANCE_S && sync.code === 0) return { syncMs, result: pass("snapshot-clock", found) };
  return { syncMs, result: fail("snapshot-clock", found, `the guest must reach ${TIME_SERVER} (UDP 123) and run sntp as root: a stale clock fails the runner's calls to GitHub`) };
}
