// The one way a secret file is read: registered for redaction before the caller holds it.
import { readFileSync } from "node:fs";
import { MacosRunnerError } from "./errors.ts";
import { registerSecret } from "./redact.ts";

const DEFAULT_FIX = "put the secret in it (mode 0600)";

/** `what` is the config key or flag naming the file; `fix` says what belongs in it. */
export function readSecretFile(path: string, what: string, fix = DEFAULT_FIX): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "ENOENT" ? "it does not exist" : e.code === "EACCES" ? "permission denied" : e.code === "EISDIR" ? "it is a directory" : e.message;
    throw new MacosRunnerError(`cannot read ${path} (${what}): ${why}; check the path in ${what} and ${fix}`, { kind: "config", cause: err });
  }
  const value = text.trim();
  if (value === "") throw new MacosRunnerError(`${path} (${what}) is empty; ${fix}`, { kind: "config" });
  registerSecret(value);
  return value;
}
