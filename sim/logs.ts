// Follows JSON-lines log files as they grow (the way an operator tails them),
// handing each parsed event to a callback. Used by the demo and the tests.
import { existsSync, readFileSync } from "node:fs";
import type { Fields, Level } from "../lib/core/log.ts";

/** One JSON line as lib/core/log.ts writes it. */
export interface LogLine extends Fields {
  time: string;
  level: Level;
  event: string;
  msg?: string;
}

export function parseLogLines(text: string): LogLine[] {
  return text.split("\n").flatMap((line) => {
    if (!line.startsWith("{")) return [];
    try {
      return [JSON.parse(line) as LogLine];
    } catch {
      return [];
    }
  });
}

/** The lines of one event, in order. */
export function events(lines: LogLine[], event: string): LogLine[] {
  return lines.filter((l) => l.event === event);
}

export function followLogs(paths: string[], onLine: (l: LogLine) => void, pollMs = 100): { stop(): void } {
  const offsets = new Map<string, number>(paths.map((p) => [p, 0]));
  const poll = () => {
    for (const [path, offset] of offsets) {
      if (!existsSync(path)) continue;
      const buf = readFileSync(path);
      const end = buf.lastIndexOf(0x0a) + 1;
      if (end <= offset) continue;
      offsets.set(path, end);
      for (const l of parseLogLines(buf.subarray(offset, end).toString("utf8"))) onLine(l);
    }
  };
  const timer = setInterval(poll, pollMs);
  return {
    stop() {
      clearInterval(timer);
      poll();
    },
  };
}
