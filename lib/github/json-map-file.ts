// A small persistent map in a 0600 JSON file under the state directory, shared
// by the slots of a host (installation ids, runner group ids, tokens). Writes
// are atomic; entries that fail `valid` (an older format, a hand edit) read as
// absent, and an unparsable file as empty, so a bad cache costs a lookup, not a slot.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { StateIoError } from "../core/errors.ts";
import { writeFileAtomic } from "../core/fs.ts";

export class JsonMapFile<V> {
  constructor(
    readonly path: string,
    private readonly valid: (v: unknown) => v is V,
  ) {}

  get(key: string): V | undefined {
    const v = this.read()[key];
    return this.valid(v) ? v : undefined;
  }

  set(key: string, value: V): void {
    this.write({ ...this.read(), [key]: value });
  }

  delete(key: string): void {
    const { [key]: _dropped, ...rest } = this.read();
    this.write(rest);
  }

  private read(): Record<string, unknown> {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw new StateIoError(`cannot read ${this.path}: ${(err as Error).message}`, err);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }

  private write(entries: Record<string, unknown>): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      writeFileAtomic(this.path, JSON.stringify(entries), 0o600);
    } catch (err) {
      throw new StateIoError(`cannot write ${this.path}: ${(err as Error).message}`, err);
    }
  }
}

export const isPositiveInteger = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v > 0;
