// The VM's power, one per running VM, detached and marked
// SIM_TART_POWER=<vm dir>. Its stdin is a pipe from `tart run`, so it sees the
// run process end at once however it ends (SIGKILL included): then the VM is
// off. Its guest's processes are frozen, not killed, so that their TCP peers
// hear nothing (contracts §11: no FIN, no RST), and are killed after
// dead_peer_ms, or at once on SIGTERM: a new run of the VM with this MAC
// takes their address (vm/lifecycle.ts). When the run process ends it also
// stamps the VM's place with the time it frees (places.ts).
// argv: <vm dir> <MAC> <dead_peer_ms> <place file> <place_release_ms>
import { releasePlace } from "../places.ts";
import { freezeGuest, killProcesses, ownStart, type Proc } from "./processes.ts";

const [vmDir, , deadPeerMs, placeFile, placeReleaseMs] = process.argv.slice(2);
if (vmDir === undefined || deadPeerMs === undefined || placeFile === undefined || placeReleaseMs === undefined) {
  process.stderr.write("usage: guest/watchdog.ts <vm dir> <MAC> <dead_peer_ms> <place file> <place_release_ms>\n");
  process.exit(64);
}
// The guest of this run started after this watchdog; older ones are not ours.
const since = ownStart();
let frozen: Proc[] | undefined;
const powerOff = () => (frozen ??= freezeGuest(vmDir, since));

process.stdin.on("data", () => {});
process.stdin.on("end", () => {
  releasePlace(placeFile, Number(placeReleaseMs));
  if (powerOff().length === 0) process.exit(0);
  setTimeout(() => {
    killProcesses(powerOff());
    process.exit(0);
  }, Number(deadPeerMs));
});
process.on("SIGTERM", () => {
  killProcesses(powerOff());
  process.exit(0);
});
setInterval(() => {}, 1 << 30);
