// The VM's power, one per running VM, detached and marked
// SIM_TART_POWER=<vm dir>. Its stdin is a pipe from `tart run`, so it sees the
// run process end at once however it ends (SIGKILL included): then the VM is
// off. Its guest's processes are frozen, not killed, so that their TCP peers
// hear nothing (contracts §11: no FIN, no RST), and are killed after
// dead_peer_ms. argv: <vm dir> <dead_peer_ms>
import { freezeGuest, killProcesses } from "./processes.ts";

const [vmDir, deadPeerMs] = process.argv.slice(2);
process.stdin.on("data", () => {});
process.stdin.on("end", () => {
  const frozen = freezeGuest(vmDir);
  if (frozen.length === 0) process.exit(0);
  setTimeout(() => {
    killProcesses(frozen);
    process.exit(0);
  }, Number(deadPeerMs));
});
setInterval(() => {}, 1 << 30);
