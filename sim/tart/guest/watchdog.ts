// One per running VM, detached: when the `tart run` process is gone (however
// it ended, SIGKILL included), power the guest off by killing its processes.
// argv: <run pid> <run start time> <pgid file>
import { processStartTime } from "../process.ts";
import { killGuestProcesses } from "./processes.ts";

const [pid, start, file] = process.argv.slice(2);

setInterval(() => {
  if (processStartTime(Number(pid)) === start) return;
  killGuestProcesses(file);
  process.exit(0);
}, 200);
