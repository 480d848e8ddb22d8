// Runner and VM names: <prefix>-<host>-<slot>-<random>. The prefix+host+slot
// part is how a slot recognises what is its own (and never touches the rest).
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

/** GitHub rejects longer runner names (contracts/github.md §5 pitfall 5). */
export const MAX_NAME = 64;
const SUFFIX = 6;

export function shortHost(h: string = hostname()): string {
  return (h.split(".")[0] ?? "host").toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/-+/g, "-").replace(/^-|-$/g, "") || "host";
}

/** `<prefix>-<host>-<slot>-`, the host part shortened so a full name fits in MAX_NAME. */
export function slotPrefix(prefix: string, slot: number, host: string = shortHost()): string {
  const room = MAX_NAME - prefix.length - String(slot).length - SUFFIX - 3;
  return `${prefix}-${host.slice(0, Math.max(1, room)).replace(/-$/, "")}-${slot}-`;
}

export function newName(prefix: string, slot: number, host?: string): string {
  return slotPrefix(prefix, slot, host) + randomBytes(SUFFIX / 2).toString("hex");
}

export function isSlotsOwn(name: string, prefix: string, slot: number, host?: string): boolean {
  const p = slotPrefix(prefix, slot, host);
  return name.startsWith(p) && /^[0-9a-f]+$/.test(name.slice(p.length));
}
