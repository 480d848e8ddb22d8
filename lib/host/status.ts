// What `status` shows. Only reads: no lock, no state written, safe while loops run.
import type { Config } from "../config/index.ts";
import { inspectImageLock, type ImageLock } from "../image/pin.ts";
import { currentHostId, isSlotsOwn, slotPrefix } from "../config/names.ts";
import { readSlotView, type SlotView } from "./slot-view.ts";
import type { Tart } from "../vm/tart.ts";

export type SlotStatus =
  | { slot: number; state: "never-ran" }
  | { slot: number; state: "unreadable"; problem: string }
  | ({ state: "ok"; in_phase_s?: number; vm_running?: boolean } & SlotView);

type GitHubRunner = { id: number; name: string; status: string; busy: boolean };

export interface StatusReport {
  host: string;
  generated_at: string;
  slots: SlotStatus[];
  /** owner: "slot N", "slot N (unnamed)" or "other". */
  vms: { name: string; running: boolean; owner: string }[];
  vms_error?: string;
  image_lock?: ImageLock;
  image_lock_problem?: string;
  /** seen_by: "slot N", "slot N ghost" or "unknown". */
  runners?: (GitHubRunner & { seen_by: string })[];
  runners_error?: string;
}

export async function gatherStatus(o: { config: Config; tart: Tart; slots?: number[] | undefined; host?: string; now?: number }): Promise<StatusReport> {
  const { config } = o;
  const now = o.now ?? Date.now();
  const host = o.host ?? currentHostId(config.host.id, config.host.stateDir);
  const slotNumbers = o.slots ?? Array.from({ length: config.host.slots }, (_, i) => i + 1);
  const slots = slotNumbers.map((slot): SlotStatus => {
    const r = readSlotView(config.host.stateDir, slot);
    if (r.kind === "missing") return { slot, state: "never-ran" };
    if (r.kind === "unreadable") return { slot, state: "unreadable", problem: r.problem };
    const since = r.view.phase_since ? Date.parse(r.view.phase_since) : NaN;
    return { state: "ok", ...r.view, ...(Number.isFinite(since) && { in_phase_s: Math.max(0, Math.round((now - since) / 1000)) }) };
  });

  const report: StatusReport = { host, generated_at: new Date(now).toISOString(), slots, vms: [] };
  try {
    const listed = await o.tart.list();
    const named = new Map<string, number>();
    for (const s of slots) if (s.state === "ok") for (const n of [s.vm, s.next_vm?.name]) if (n) named.set(n, s.slot);
    report.vms = listed.map((v) => ({ name: v.Name, running: v.Running, owner: ownerOf(v.Name, named, config.runner.namePrefix, host) }));
    for (const s of slots) if (s.state === "ok" && s.vm) s.vm_running = listed.some((v) => v.Name === s.vm && v.Running);
  } catch (err) {
    report.vms_error = (err as Error).message;
  }
  const lock = inspectImageLock(config.host.stateDir);
  if (lock.lock) report.image_lock = lock.lock;
  if (lock.problem) report.image_lock_problem = lock.problem;
  return report;
}

function ownerOf(name: string, named: Map<string, number>, prefix: string, host: string): string {
  const slot = named.get(name);
  if (slot !== undefined) return `slot ${slot}`;
  for (const s of [1, 2]) if (isSlotsOwn(name, prefix, s, host)) return `slot ${s} (unnamed)`;
  return "other";
}

export function hostRunnerPrefixes(prefix: string, host: string): string[] {
  return [1, 2].map((s) => slotPrefix(prefix, s, host));
}

export function hostRunners(all: GitHubRunner[], report: StatusReport, prefix: string): NonNullable<StatusReport["runners"]> {
  const prefixes = hostRunnerPrefixes(prefix, report.host);
  return all
    .filter((r) => prefixes.some((p) => r.name.startsWith(p)))
    .map((r) => {
      let seen_by = "unknown";
      for (const s of report.slots) {
        if (s.state !== "ok") continue;
        if (s.runner_id === r.id || s.runner_name === r.name) seen_by = `slot ${s.slot}`;
        else if (s.ghosts.some((g) => g.id === r.id)) seen_by = `slot ${s.slot} ghost`;
      }
      return { id: r.id, name: r.name, status: r.status, busy: r.busy, seen_by };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

function formatDuration(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor((s % 86400) / 3600)).padStart(2, "0")}h`;
}

const shortDigest = (ref: string | undefined) => {
  const d = ref?.match(/sha256:([0-9a-f]{12})/)?.[1];
  return d ? `sha256:${d}` : ref ?? "-";
};

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd());
}

function failureText(s: SlotView, now: number): string {
  const parts: string[] = [];
  if (s.failures > 0) parts.push(`${s.failures} in a row`);
  const until = s.backoff_until ? Date.parse(s.backoff_until) : NaN;
  if (Number.isFinite(until) && until > now) parts.push(`backoff ${formatDuration(Math.ceil((until - now) / 1000))} more`);
  if (s.last_error) parts.push(s.last_error.length > 60 ? `${s.last_error.slice(0, 57)}...` : s.last_error);
  return parts.join("; ") || "-";
}

export function renderStatus(r: StatusReport): string {
  const now = Date.parse(r.generated_at);
  const lock = r.image_lock;
  const lines = [
    `host ${r.host}: ${r.slots.length} slot${r.slots.length === 1 ? "" : "s"}; image ${lock ? `${shortDigest(lock.digest)} pinned${lock.pinned_at ? ` ${lock.pinned_at}` : ""}${lock.runner_version ? `, runner ${lock.runner_version}` : ""}` : "not pinned (no image.lock)"}`,
  ];
  if (r.image_lock_problem) lines.push(`  image.lock: ${r.image_lock_problem}`);
  const rows = [["SLOT", "PHASE", "FOR", "VM", "RUNNER", "JOB", "SERVED", "FAILURES / BACKOFF", "IMAGE"]];
  for (const s of r.slots) {
    if (s.state === "never-ran") rows.push([String(s.slot), "-", "-", "-", "-", "-", "0", "never ran (no state file)", "-"]);
    else if (s.state === "unreadable") rows.push([String(s.slot), "?", "-", "-", "-", "-", "-", `state unreadable: ${s.problem}`, "-"]);
    else {
      const vm = s.vm ? `${s.vm}${s.vm_running === undefined ? "" : s.vm_running ? " (running)" : " (not running)"}` : "-";
      const id = s.runner_id === undefined ? "#?" : `#${s.runner_id}`;
      const named = s.runner_name ? (s.runner_name === s.vm ? id : `${id} ${s.runner_name}`) : "-";
      const runner = s.vm_runners !== undefined && s.vm_runners > 1 ? `${named} (${ordinal(s.vm_runners)} on VM)` : named;
      const job = s.job ? `${s.job}${s.job_result ? ` [${s.job_result}]` : ""}` : "-";
      rows.push([String(s.slot), s.phase, s.in_phase_s === undefined ? "-" : formatDuration(s.in_phase_s), vm, runner, job, String(s.jobs_served), failureText(s, now), shortDigest(s.image)]);
    }
  }
  lines.push(...table(rows));
  for (const s of r.slots) {
    if (s.state !== "ok") continue;
    if (s.host_degraded_at) lines.push(`slot ${s.slot}: HOST DEGRADED (${s.host_degraded_at}): macOS reports its VM limit with fewer than two VMs running (leaked VM places); reboot the Mac`);
    if (s.next_vm) lines.push(`slot ${s.slot}: next VM ${s.next_vm.name} ready${s.next_vm.image ? ` (${shortDigest(s.next_vm.image)})` : ""}`);
    for (const g of s.ghosts) lines.push(`slot ${s.slot}: ghost runner ${g.id} ${g.name} still busy on GitHub${g.since ? ` since ${g.since}` : ""}; deleted once GitHub lets go`);
    for (const p of s.problems) lines.push(`slot ${s.slot}: state file: ${p}`);
  }
  if (r.vms_error) lines.push(`VMs: tart list failed: ${r.vms_error}`);
  else {
    const running = r.vms.filter((v) => v.running).length;
    lines.push(`VMs (${r.vms.length}, ${running} running of at most 2):${r.vms.length === 0 ? " none" : ""}`);
    for (const v of r.vms) lines.push(`  ${v.name}  ${v.running ? "running" : "stopped"}  ${v.owner}`);
  }
  if (r.runners) {
    lines.push(`GitHub runners of this host (${r.runners.length}):${r.runners.length === 0 ? " none" : ""}`);
    if (r.runners.length > 0) {
      lines.push(...table([["ID", "NAME", "STATUS", "BUSY", "KNOWN TO"], ...r.runners.map((x) => [String(x.id), x.name, x.status, x.busy ? "busy" : "idle", x.seen_by])]).map((l) => `  ${l}`));
    }
  }
  if (r.runners_error) lines.push(`GitHub runners: ${r.runners_error}`);
  return `${lines.join("\n")}\n`;
}

/** 2 -> "2nd", 11 -> "11th", 23 -> "23rd". */
function ordinal(n: number): string {
  const teen = n % 100 >= 11 && n % 100 <= 13;
  const suffix = teen ? "th" : ({ 1: "st", 2: "nd", 3: "rd" } as Record<number, string>)[n % 10] ?? "th";
  return `${n}${suffix}`;
}
