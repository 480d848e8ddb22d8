// Fault injection: consumes the armed faults of SIM_TART_CONFIG. Consumption
// is counted in `<file>.state`, which resets whenever the file's content
// changes.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { withFileLock } from "./filelock.ts";
import { loadSettings, readConfigText, type Fault, type FaultKind } from "./settings.ts";

function matches(pattern: string | undefined, name: string): boolean {
  if (pattern === undefined) return true;
  const re = new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
  return re.test(name);
}

interface FaultState {
  hash: string;
  used: number[];
}

/** Consumes and returns the first armed fault of this kind that targets `vm`. */
export function takeFault(kind: FaultKind, vm: string): Fault | undefined {
  const raw = readConfigText();
  if (raw === undefined) return undefined;
  const settings = loadSettings();
  if (!settings.faults.some((f) => f.kind === kind && matches(f.vm, vm))) return undefined;
  const statePath = `${process.env.SIM_TART_CONFIG}.state`;
  const hash = createHash("sha256").update(raw).digest("hex");
  return withFileLock(`${statePath}.lock`, () => {
    let state: FaultState = { hash, used: [] };
    try {
      const saved = JSON.parse(readFileSync(statePath, "utf8")) as FaultState;
      if (saved.hash === hash) state = saved;
    } catch {}
    const index = settings.faults.findIndex(
      (f, i) => f.kind === kind && matches(f.vm, vm) && (state.used[i] ?? 0) < (f.count ?? 1),
    );
    if (index < 0) return undefined;
    state.used[index] = (state.used[index] ?? 0) + 1;
    writeFileSync(statePath, JSON.stringify(state));
    return settings.faults[index];
  });
}
