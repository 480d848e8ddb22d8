// macOS bootpd's lease file (/var/db/dhcpd_leases) as text: one `{ … }` block
// per lease, tab-indented key=value lines, MAC octets in hex without leading
// zeros (`1,2:4b:3:…`), `lease` = expiry in epoch seconds as 0x hex. The
// reader follows tart's Leases.swift and Lease.swift: a block is kept only
// with hw_address, ip_address and lease; expired leases are dropped; of two
// leases for one MAC the later expiry wins; a malformed file is an error.
import { TartError } from "./errors.ts";

export interface Lease {
  /** Normalised: six lowercase two-digit octets. */
  mac: string;
  ip: string;
  /** Epoch seconds. */
  expires: number;
  /** The guest's host name as its DHCP client sent it. */
  name: string;
}

/** `0a:1b:…` -> `a:1b:…`, as bootpd writes hw_address. */
const bootpdMAC = (mac: string) => mac.split(":").map((o) => parseInt(o, 16).toString(16)).join(":");

export function renderLeases(leases: Lease[]): string {
  return leases
    .map((l) => {
      const hw = `1,${bootpdMAC(l.mac)}`;
      return `{\n\tname=${l.name}\n\tip_address=${l.ip}\n\thw_address=${hw}\n\tidentifier=${hw}\n\tlease=0x${l.expires.toString(16)}\n}\n`;
    })
    .join("");
}

/** Raw blocks, as PLCache_read() and tart's retrieveRawLeases() cut them. */
function rawBlocks(text: string): Record<string, string>[] {
  const blocks: Record<string, string>[] = [];
  let state = "nowhere" as "nowhere" | "start" | "body" | "end";
  let current: Record<string, string> = {};
  // Swift's split(separator:) drops empty lines, so line numbers count only non-empty ones.
  const lines = text.split("\n").filter((l) => l !== "");
  for (const [i, line] of lines.entries()) {
    const lineNumber = i + 1;
    if (line === "{") {
      if (state !== "nowhere" && state !== "end") throw unexpectedFormat("unexpected lease block start ({)", lineNumber);
      state = "start";
    } else if (line === "}") {
      if (state !== "body") throw unexpectedFormat("unexpected lease block end (})", lineNumber);
      blocks.push(current);
      current = {};
      state = "end";
    } else {
      const content = line.replace(/^[ \t]+/, "");
      if (content === "") continue;
      const eq = content.indexOf("=");
      if (eq <= 0 || eq === content.length - 1) throw unexpectedFormat("key-value pair with only a key", lineNumber);
      current[content.slice(0, eq)] = content.slice(eq + 1);
      state = "body";
    }
  }
  if (state === "start" || state === "body") throw new TartError('Truncated(name: "truncated DHCPD leases file")');
  return blocks;
}

const unexpectedFormat = (message: string, line: number) =>
  new TartError(`UnexpectedFormat(name: "unexpected DHCPD leases file format", message: "${message}", line: ${line})`);

function parseMAC(text: string): string | undefined {
  const parts = text.split(":");
  if (parts.length !== 6) return undefined;
  return parts
    .map((p) => {
      // tart force-unwraps UInt8(component, radix: 16): anything else crashes it.
      if (!/^[0-9a-fA-F]{1,2}$/.test(p)) throw new TartError("Fatal error: Unexpectedly found nil while unwrapping an Optional value");
      return parseInt(p, 16).toString(16).padStart(2, "0");
    })
    .join(":");
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function toLease(raw: Record<string, string>): Lease | undefined {
  const { hw_address: hw, ip_address: ip, lease } = raw;
  if (hw === undefined || ip === undefined || lease === undefined) return undefined;
  const [proto = "", macText, ...rest] = hw.split(",");
  if (macText === undefined || rest.length > 0) return undefined;
  if (/^[+-]?\d+$/.test(proto) && Number(proto) !== 1) return undefined;
  const mac = parseMAC(macText);
  if (!mac || !IPV4.test(ip)) return undefined;
  const hex = /^(?:0x)?([0-9a-fA-F]+)$/.exec(lease)?.[1];
  if (hex === undefined) return undefined;
  return { mac, ip, expires: parseInt(hex, 16), name: raw.name ?? "" };
}

/** Every well-formed lease in the file, expired ones included. */
export function parseLeases(text: string): Lease[] {
  return rawBlocks(text).flatMap((raw) => toLease(raw) ?? []);
}

/** What tart's dhcp resolver sees: per MAC the unexpired lease with the latest expiry. */
export function resolveLease(text: string, mac: string, nowSeconds = Date.now() / 1000): Lease | undefined {
  const want = parseMAC(mac);
  return parseLeases(text)
    .filter((l) => l.mac === want && l.expires > nowSeconds)
    .reduce<Lease | undefined>((best, l) => (best && best.expires > l.expires ? best : l), undefined);
}
