// The guest's DHCP client: takes the first candidate address (its own lease's
// first) on which the guest's sshd port is free on this host, and records the
// lease. A frozen guest of a powered-off VM still holds its address, so the
// next VM gets another one.
import { createServer } from "node:net";
import { addressCandidates, recordLease } from "../leases.ts";

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => resolve(false));
    probe.listen(port, host, () => probe.close(() => resolve(true)));
  });
}

/** The leased address, or undefined when the pool is exhausted (no lease, as with bootpd). */
export async function takeLease(mac: string, port: number, leaseSeconds: number, avoid: string[] = []): Promise<string | undefined> {
  for (const ip of addressCandidates(mac)) {
    if (avoid.includes(ip) || !(await portFree(ip, port))) continue;
    recordLease(mac, ip, leaseSeconds);
    return ip;
  }
  return undefined;
}
