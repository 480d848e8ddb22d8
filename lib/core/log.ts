// One line per event: JSON to a file or pipe (launchd), text on a TTY. Each line is
// redacted whole after serialisation, so a secret is caught wherever it sits.
import { redact } from "./redact.ts";

export type Level = "debug" | "info" | "warn" | "error";

/** A field that is undefined is left out of the line. */
export interface Fields {
  slot?: number | undefined;
  vm?: string | undefined;
  runner?: string | undefined;
  phase?: string | undefined;
  duration_ms?: number | undefined;
  [k: string]: unknown;
}

export type Logger = Record<Level, (event: string, msg?: string, fields?: Fields) => void> & {
  child(fields: Fields): Logger;
  /** The returned function logs `event` with duration_ms and returns it. */
  time(event: string, fields?: Fields): (msg?: string, extra?: Fields) => number;
};

export interface LoggerOptions {
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  format?: "json" | "text";
  verbose?: boolean;
  fields?: Fields;
  now?: () => Date;
}

type Sink = Required<Omit<LoggerOptions, "fields">>;

interface Event {
  time: Date;
  level: Level;
  event: string;
  msg: string | undefined;
  fields: Fields;
}

const CORE_KEYS = ["slot", "vm", "runner", "phase", "duration_ms"] as const;
const RESERVED_KEYS = new Set(["time", "level", "event", "msg"]);

export function createLogger(opts: LoggerOptions = {}): Logger {
  const stream = opts.stream ?? process.stderr;
  if (opts.format !== undefined && opts.format !== "json" && opts.format !== "text") {
    throw new TypeError(`createLogger: format must be "json" or "text", got '${String(opts.format)}'`);
  }
  const sink: Sink = {
    stream,
    format: opts.format ?? (stream.isTTY ? "text" : "json"),
    verbose: opts.verbose ?? false,
    now: opts.now ?? (() => new Date()),
  };
  return loggerWith(sink, merge({}, opts.fields));
}

function loggerWith(sink: Sink, base: Fields): Logger {
  const emit = (level: Level, event: string, msg: string | undefined, fields: Fields | undefined) => {
    if (level === "debug" && !sink.verbose) return;
    const e: Event = { time: sink.now(), level, event, msg: msg || undefined, fields: merge(base, fields) };
    const line = sink.format === "json" ? jsonLine(e) : textLine(e);
    sink.stream.write(`${redact(line)}\n`);
  };
  return {
    debug: (...a) => emit("debug", ...a),
    info: (...a) => emit("info", ...a),
    warn: (...a) => emit("warn", ...a),
    error: (...a) => emit("error", ...a),
    child: (fields) => loggerWith(sink, merge(base, fields)),
    time(event, fields) {
      const started = performance.now();
      return (msg, extra) => {
        const duration_ms = Math.round(performance.now() - started);
        emit("info", event, msg, { ...merge(fields ?? {}, extra), duration_ms });
        return duration_ms;
      };
    },
  };
}

/** `b` over `a`, skipping undefined values so a child cannot blank a parent's vm or slot. */
function merge(a: Fields, b: Fields | undefined): Fields {
  const out: Fields = { ...a };
  for (const [k, v] of Object.entries(b ?? {})) if (v !== undefined) out[k] = v;
  return out;
}

/** One named like a line key (time, level, …) is kept as field_<name>. */
function freeFields(fields: Fields): [string, unknown][] {
  return Object.entries(fields)
    .filter(([k]) => !(CORE_KEYS as readonly string[]).includes(k))
    .map(([k, v]) => [RESERVED_KEYS.has(k) ? `field_${k}` : k, v]);
}

function jsonLine(e: Event): string {
  const record: Record<string, unknown> = { time: e.time.toISOString(), level: e.level, event: e.event };
  if (e.msg !== undefined) record.msg = e.msg;
  for (const k of CORE_KEYS) if (e.fields[k] !== undefined) record[k] = e.fields[k];
  for (const [k, v] of freeFields(e.fields)) record[k] = v;
  return JSON.stringify(plain(record, []));
}

// `06:30:00.123 INFO  boot.ready slot=1 vm=x runner=y phase=boot 812ms  msg  key=value …`
function textLine(e: Event): string {
  const parts = [e.time.toISOString().slice(11, 23), e.level.toUpperCase().padEnd(5), textValue(e.event)];
  for (const k of ["slot", "vm", "runner", "phase"] as const) {
    if (e.fields[k] !== undefined) parts.push(`${k}=${textValue(e.fields[k])}`);
  }
  if (e.fields.duration_ms !== undefined) parts.push(`${textValue(e.fields.duration_ms)}ms`);
  let line = parts.join(" ");
  if (e.msg !== undefined) line += `  ${escapeText(e.msg)}`;
  const free = freeFields(e.fields).filter(([, v]) => v !== undefined);
  if (free.length > 0) line += `  ${free.map(([k, v]) => `${k}=${textValue(v)}`).join(" ")}`;
  return line;
}

// Characters that would break a line or a key=value pair, or hide in a terminal.
const UNSAFE = /[\s"=\\\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const INVISIBLE = /[\u007f-\u009f\u2028\u2029]/g;

function escapeText(s: string): string {
  return JSON.stringify(s).slice(1, -1).replaceAll('\\"', '"').replace(INVISIBLE, unicodeEscape);
}

function textValue(v: unknown): string {
  if (typeof v === "string") {
    return v.length > 0 && !UNSAFE.test(v) ? v : JSON.stringify(v).replace(INVISIBLE, unicodeEscape);
  }
  const json = JSON.stringify(plain(v, [])) ?? String(v);
  return json.replace(INVISIBLE, unicodeEscape);
}

function unicodeEscape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
}

/** Errors keep only {name, message, status?}: an Octokit error's request can carry tokens in headers. */
function plain(value: unknown, ancestors: object[]): unknown {
  if (value instanceof Error) return errorFields(value);
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "function" || typeof value === "symbol") return undefined;
  if (value === null || typeof value !== "object") return value;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return `[${value.byteLength} bytes]`;
  if (value instanceof Date) return value.toJSON();
  if (ancestors.includes(value)) return "[Circular]";
  const inner = [...ancestors, value];
  if (Array.isArray(value) || value instanceof Set) return [...value].map((v) => plain(v, inner) ?? null);
  const entries = value instanceof Map ? [...value].map(([k, v]) => [String(k), v] as const) : Object.entries(value);
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) {
    const p = plain(v, inner);
    if (p !== undefined) out[k] = p;
  }
  return out;
}

function errorFields(err: Error): { name: string; message: string; status?: number } {
  const status = (err as { status?: unknown }).status;
  return { name: err.name, message: err.message, ...(typeof status === "number" ? { status } : {}) };
}
