// Who is on the other end of a TCP connection to the guest, for the sim's
// Local Network privacy (sim/PROTOCOL.md): the client's socket is found in
// /proc/net/tcp by its address and port, its inode in a process's
// /proc/<pid>/fd, and that process's ancestry through /proc/<pid>/stat.
// "Ours" is a process whose executable is the compiled macos-runner binary
// (its multi-call links resolve to it), or one such a process started.
// Linux only, like the rest of the sim.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { basename } from "node:path";

/** The product's multi-call binary, as tools/build.ts names it. */
export const PRODUCT_BINARY = "macos-runner";

export interface Peer {
  pid: number;
  /** The peer and its ancestors, nearest first: pid and executable. */
  chain: { pid: number; exe: string }[];
  /** The first process of the chain that is our binary, if any. */
  ours?: { pid: number; exe: string } | undefined;
}

/** /proc/net/tcp's address form: the IPv4 address as little-endian hex, then the port in hex. */
function procAddress(ip: string, port: number): string {
  const hex = ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0").toUpperCase()).reverse().join("");
  return `${hex}:${port.toString(16).padStart(4, "0").toUpperCase()}`;
}

function socketInode(ip: string, port: number): string | undefined {
  const want = procAddress(ip, port);
  let text = "";
  try {
    text = readFileSync("/proc/net/tcp", "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
    if (f[1] === want && f[9] && f[9] !== "0") return f[9];
  }
  return undefined;
}

function holderOf(inode: string): number | undefined {
  const target = `socket:[${inode}]`;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${name}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${name}/fd/${fd}`) === target) return Number(name);
      } catch {}
    }
  }
  return undefined;
}

function exeOf(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return "";
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return ppid > 0 ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** The process holding the client end of a connection from ip:port, and its ancestry; undefined when not found. */
export function peerOf(ip: string, port: number): Peer | undefined {
  const inode = socketInode(ip, port);
  const pid = inode && holderOf(inode);
  if (!pid) return undefined;
  const chain: Peer["chain"] = [];
  for (let p: number | undefined = pid; p !== undefined && chain.length < 64; p = parentOf(p)) chain.push({ pid: p, exe: exeOf(p) });
  return { pid, chain, ours: chain.find((c) => basename(c.exe) === PRODUCT_BINARY) };
}
