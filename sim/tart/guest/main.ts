// The simulated guest OS: one process per running VM, started by `tart run`
// in a process group of its own and marked SIM_TART_VM like everything it
// starts. A booting guest takes its DHCP lease at <lease at> (boot_ms after
// `tart run`) and its sshd answers ssh_ms later; a resumed guest (restored
// from a snapshot of a booted one) has both at once. It tells `tart run` what
// happens on stdout, one JSON line per event (see GuestEvent).
// argv: <vm dir> boot|resume <lease at, epoch ms>
import { readVMConfig, sleep } from "../home.ts";
import { loadSettings } from "../settings.ts";
import { takeLease } from "./dhcp.ts";
import { guestEnv, VM_MARKER } from "./env.ts";
import { guestRoot } from "./fs.ts";
import { killMarked, ownStart } from "./processes.ts";
import { startGuestSSH, type GuestSSH } from "./ssh-server.ts";
import { trace } from "../trace.ts";
import { takeFault } from "../faults.ts";
import { basename } from "node:path";

export type GuestEvent = { lease: string } | { ssh: true } | { agent: true } | { shutdown: true };

const emit = (event: GuestEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);

const [vmDir, mode, leaseAt] = process.argv.slice(2);
if (vmDir === undefined || (mode !== "boot" && mode !== "resume") || leaseAt === undefined) {
  process.stderr.write("usage: guest/main.ts <vm dir> boot|resume <lease at, epoch ms>\n");
  process.exit(64);
}
const vm: string = vmDir;
const settings = loadSettings();
const mac = readVMConfig(vmDir).macAddress;
let ssh: GuestSSH | undefined;

// `sudo shutdown -h now`: the guest ends all its processes, closing their
// connections as a shutdown does, and powers off.
function shutdown(): void {
  killMarked((v) => v === vmDir, VM_MARKER, ownStart());
  ssh?.close();
  emit({ shutdown: true });
  process.exit(0);
}

async function lease(avoid: string[] = []): Promise<string> {
  const ip = await takeLease(mac, settings.ssh_port, settings.lease_s, avoid);
  if (ip === undefined) {
    console.error("guest: the DHCP pool is exhausted; no lease");
    return await new Promise<string>(() => {}); // no address, ever
  }
  emit({ lease: ip });
  trace({ kind: "guest", vm, event: "lease", ip });
  return ip;
}

setInterval(() => {}, 1 << 30);
await sleep(Number(leaseAt) - Date.now());
let ip = await lease();
// The guest agent is a LaunchAgent of the auto-login session: it answers
// agent_ms after the lease on a boot, at once in a resumed guest.
setTimeout(() => {
  emit({ agent: true });
  trace({ kind: "guest", vm, event: "agent" });
}, mode === "boot" ? settings.agent_ms : 0);
if (mode === "boot") await sleep(settings.ssh_ms);
const taken: string[] = [];
for (;;) {
  try {
    ssh = await startGuestSSH({ root: guestRoot(vmDir), env: guestEnv(vmDir, settings), host: ip, port: settings.ssh_port, onShutdown: shutdown, onExec: (command) => trace({ kind: "guest", vm, event: "exec", command: command.slice(0, 80) }),
      localNetwork: settings.local_network,
      dropExec: (command) => command.startsWith("IFS= read -r ACTIONS_RUNNER_INPUT_JITCONFIG") && takeFault("ssh_drop_runner", basename(vm)) !== undefined,
      onConnection: (c) => trace({ kind: "guest", vm, event: c.refused ? "refused" : "connect", peer: c.peer, ours: c.ours }) });
    break;
  } catch (err) {
    // Another process took the address since the lease: take another one.
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    taken.push(ip);
    ip = await lease(taken);
  }
}
emit({ ssh: true });
trace({ kind: "guest", vm, event: "ssh", ip });
