// Injected faults: each applies to the next `count` calls it matches.
import { UsageErrorBody } from "./validate-input.ts";
import type { FaultSpec } from "./types.ts";

interface ArmedFault {
  spec: FaultSpec;
  regex?: RegExp | undefined;
  left: number;
  /** Matching calls still to let through before it applies. */
  skip: number;
}

export class Faults {
  private armed: ArmedFault[] = [];

  /** Arms a fault; throws UsageErrorBody when the spec is malformed. */
  add(spec: FaultSpec): void {
    const count = spec.count ?? 1;
    if (!Number.isInteger(count) || count < 1) throw new UsageErrorBody(`fault: count must be a positive integer, got ${JSON.stringify(spec.count)}`);
    if (spec.status !== undefined && (!Number.isInteger(spec.status) || spec.status < 100 || spec.status > 599)) {
      throw new UsageErrorBody(`fault: status must be an HTTP status code, got ${JSON.stringify(spec.status)}`);
    }
    if (spec.rateLimited !== undefined && spec.rateLimited !== "primary" && spec.rateLimited !== "secondary") {
      throw new UsageErrorBody(`fault: rateLimited must be "primary" or "secondary", got ${JSON.stringify(spec.rateLimited)}`);
    }
    const skip = spec.skip ?? 0;
    if (!Number.isInteger(skip) || skip < 0) throw new UsageErrorBody(`fault: skip must be a whole number, got ${JSON.stringify(spec.skip)}`);
    if (spec.path === undefined && spec.pathRegex === undefined) throw new UsageErrorBody("fault: give path or pathRegex");
    let regex: RegExp | undefined;
    if (spec.pathRegex !== undefined) {
      try {
        regex = new RegExp(spec.pathRegex);
      } catch (err) {
        throw new UsageErrorBody(`fault: pathRegex is not a regular expression: ${(err as Error).message}`);
      }
    }
    this.armed.push({ spec, regex, left: count, skip });
  }

  clear(): void {
    this.armed = [];
  }

  /** The fault for this call, consuming one of its uses, or undefined. */
  take(method: string, path: string, template: string | undefined): FaultSpec | undefined {
    const hit = this.armed.find(
      ({ spec, regex }) =>
        (!spec.method || spec.method.toUpperCase() === method) &&
        (regex ? regex.test(path) : spec.path === path || spec.path === template),
    );
    if (!hit) return undefined;
    if (hit.skip > 0) {
      hit.skip--;
      return undefined;
    }
    hit.left--;
    if (hit.left === 0) this.armed = this.armed.filter((f) => f !== hit);
    return hit.spec;
  }
}
