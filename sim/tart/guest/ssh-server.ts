// The guest's sshd: public-key auth for the image user against its
// authorized_keys, the image's host key, and exec requests run with
// `/bin/sh -c` in the user's home in the guest's environment (guest/env.ts),
// each in a session of its own (stdin, stdout, stderr, exit status and exit
// signal passed through). No pty, no shell, no subsystems.
import { spawn } from "node:child_process";
import { createServer, type Socket } from "node:net";
import { readFileSync } from "node:fs";
import { timingSafeEqual } from "node:crypto";
import ssh2, { type Connection, type ParsedKey } from "ssh2";
import { authorizedKeysPath, GUEST_USER, hostKeyPath, userHome } from "./fs.ts";
import { peerOf } from "./peer.ts";

const { Server, utils } = ssh2;

export interface GuestSSHOptions {
  root: string;
  env: Record<string, string>;
  host: string;
  port: number;
  /** A guest-initiated power-off, e.g. `sudo shutdown -h now`. */
  onShutdown: () => void;
  /** Told of every exec request as it arrives. */
  onExec?: (command: string) => void;
  /** True when this exec request is to be dropped before it runs (the ssh_drop_runner fault). */
  dropExec?: (command: string) => boolean;
  /**
   * Local Network privacy: "withheld" (the default) refuses a connection from
   * our binary or a process it started (sim/PROTOCOL.md); "granted" lets it in.
   */
  localNetwork: "withheld" | "granted";
  /** Told of every TCP connection: who it came from, and whether it was refused. */
  onConnection?: (c: { peer: string; ours: boolean; refused: boolean }) => void;
}

export interface GuestSSH {
  close(): void;
}

const SHUTDOWN = /^\s*(sudo\s+(-S\s+)?)?(\/sbin\/)?(shutdown\s+-h\s+now|halt|poweroff)\s*$/;

function authorizedKeys(root: string): ParsedKey[] {
  let text = "";
  try {
    text = readFileSync(authorizedKeysPath(root, GUEST_USER), "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .flatMap((l) => {
      const k = utils.parseKey(l);
      return k instanceof Error ? [] : [Array.isArray(k) ? k[0] : k];
    });
}

function serveExec(conn: Connection, opts: GuestSSHOptions): void {
  conn.on("session", (acceptSession) => {
    const session = acceptSession();
    session.on("env", (accept) => accept?.());
    session.on("pty", (_a, reject) => reject?.());
    session.on("shell", (_a, reject) => reject());
    session.on("subsystem", (_a, reject) => reject());
    session.on("exec", (accept, _reject, info) => {
      opts.onExec?.(info.command);
      // sshd answering while the guest still boots: the connection closes before the command runs.
      if (opts.dropExec?.(info.command)) return void conn.end();
      const channel = accept();
      if (SHUTDOWN.test(info.command)) {
        channel.exit(0);
        channel.end();
        // Off once the client has its exit status (it closes the channel): closing the
        // connections sooner can drop the unsent status on a loaded host. At most 1 s.
        let off = false;
        const powerOff = () => {
          if (off) return;
          off = true;
          opts.onShutdown();
        };
        channel.once("close", powerOff);
        setTimeout(powerOff, 1000);
        return;
      }
      const child = spawn("/bin/sh", ["-c", info.command], {
        cwd: userHome(opts.root, GUEST_USER),
        env: opts.env,
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
      });
      child.stdin.on("error", () => {});
      channel.pipe(child.stdin);
      child.stdout.pipe(channel, { end: false });
      child.stderr.pipe(channel.stderr, { end: false });
      let open = true;
      // Like sshd without a pty: a dropped connection sends no SIGHUP, it
      // only closes the pipes; the process lives on until it writes
      // (SIGPIPE) or exits.
      channel.on("close", () => {
        open = false;
        child.stdout.unpipe();
        child.stderr.unpipe();
        child.stdout.destroy();
        child.stderr.destroy();
        child.stdin.destroy();
      });
      child.on("error", (err) => {
        if (!open) return;
        channel.stderr.write(`sh: ${err.message}\n`);
        channel.exit(127);
        channel.end();
      });
      child.on("close", (code, signal) => {
        if (!open) return;
        if (signal) channel.exit(signal.replace(/^SIG/, ""), false, "");
        else channel.exit(code ?? 0);
        channel.end();
      });
    });
  });
}

export function startGuestSSH(opts: GuestSSHOptions): Promise<GuestSSH> {
  const connections = new Set<Connection>();
  const server = new Server({ hostKeys: [readFileSync(hostKeyPath(opts.root))] }, (conn) => {
    connections.add(conn);
    conn.on("close", () => connections.delete(conn));
    conn.on("error", () => {});
    conn.on("authentication", (ctx) => {
      if (ctx.method !== "publickey" || ctx.username !== GUEST_USER) return ctx.reject(["publickey"]);
      const key = authorizedKeys(opts.root).find(
        (k) => k.type === ctx.key.algo && timingSafeEqualSafe(k.getPublicSSH(), ctx.key.data),
      );
      if (!key) return ctx.reject(["publickey"]);
      if (ctx.signature && ctx.blob && !key.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return ctx.reject(["publickey"]);
      ctx.accept();
    });
    conn.on("ready", () => serveExec(conn, opts));
  });
  // TCP first: the peer is looked up before SSH sees the connection. A Mac
  // refuses at connect() (EHOSTUNREACH); the sim can only reset what it accepted.
  const tcp = createServer({ pauseOnConnect: true }, (socket: Socket) => {
    const ip = (socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    const peer = peerOf(ip, socket.remotePort ?? 0);
    const ours = peer?.ours !== undefined;
    const refused = ours && opts.localNetwork !== "granted";
    opts.onConnection?.({ peer: peer ? peer.chain.slice(0, peer.ours ? peer.chain.indexOf(peer.ours) + 1 : 4).map((c) => `${c.pid}:${c.exe}`).join(" < ") : `${ip}:${socket.remotePort} (process not found)`, ours, refused });
    if (refused) return socket.resetAndDestroy();
    server.injectSocket(socket);
    socket.resume();
  });
  return new Promise((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(opts.port, opts.host, () => {
      tcp.off("error", reject);
      resolve({
        close() {
          tcp.close();
          for (const c of connections) c.end();
        },
      });
    });
  });
}

function timingSafeEqualSafe(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
