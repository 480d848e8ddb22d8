// `selftest`, the compiled binary, against the simulated world: it loads a
// one-shot agent into the simulated launchd (sim/bin/launchctl), the agent
// runs the host checks, a VM cycle and the snapshot path, the command relays
// the table and exits with the agent's code, and the JSON report is written.
// Each FAIL comes from a fault of the world (no lease, a wrong host key, an
// old runner, a restore that boots cold, a clock that stays off), and
// nothing the selftest made is left, also when it is stopped.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SelftestReport } from "../../lib/host/selftest.ts";
import type { World } from "../../sim/world.ts";
import { ensureBinaries } from "../helpers/e2e.ts";
import { fileWorld, slots, start, until, vms, type Slots } from "./harness.ts";

const DAY = 86_400_000;
const daysAgo = (d: number) => new Date(Date.now() - d * DAY).toISOString();
/** actions/runner's releases as GitHub lists them; the sim's runner is 2.336.0. */
const CURRENT = [{ tag_name: "v2.336.0", published_at: daysAgo(3), draft: false, prerelease: false }];
const SUPERSEDED = [
  { tag_name: "v2.338.0", published_at: daysAgo(5), draft: false, prerelease: false },
  { tag_name: "v2.337.0", published_at: daysAgo(40), draft: false, prerelease: false },
  ...CURRENT,
];

let world: World;
let releases: Record<string, typeof CURRENT> = {};
let server: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  ensureBinaries(["selftest"]);
  world = await fileWorld({ tart: { boot_ms: 100, ssh_ms: 50, suspend_ms: 50, restore_ms: 100 } });
  // GitHub's releases, per test (by the org in the path), so tests share nothing.
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const [, id, ...rest] = new URL(req.url).pathname.split("/");
      const list = releases[id!] ?? CURRENT;
      if (rest.join("/") === "releases/latest") return Response.json(list[0]);
      if (rest.join("/") === "releases") return Response.json(list);
      return new Response('{"message":"Not Found"}', { status: 404 });
    },
  });
}, 60_000);

afterAll(async () => {
  server?.stop(true);
  await world?.stop();
});

interface Selftest {
  s: Slots;
  code: number | null;
  stdout: string;
  report: SelftestReport;
  by(check: string): SelftestReport["checks"][number];
}

let hosts = 0;
function host(o: { overrides?: Record<string, unknown>; releases?: typeof CURRENT } = {}): Slots & { launchd: string; reportPath: string } {
  const id = `h${++hosts}`;
  releases[id] = o.releases ?? CURRENT;
  const s = slots(world, {
    ...o.overrides,
    image: { runner_releases_url: `http://127.0.0.1:${server.port}/${id}/releases` },
    vm: { boot_timeout: "3s", ...(o.overrides?.vm as object) },
  });
  // A host that has served before has the image in tart's cache.
  const pull = spawnSync(s.config.host.tartPath, ["pull", world.imageRef, "--insecure"], { env: s.env, encoding: "utf8" });
  if (pull.status !== 0) throw new Error(`tart pull failed: ${pull.stderr}`);
  const launchd = join(world.dir, s.org, "launchd");
  mkdirSync(launchd, { recursive: true });
  // The GUI session's environment: this host's TART_HOME and sim settings (on a Mac: ~/.tart).
  writeFileSync(join(launchd, "session.json"), JSON.stringify({ HOME: s.env.HOME, TART_HOME: s.env.TART_HOME, SIM_TART_CONFIG: s.env.SIM_TART_CONFIG, PATH: "/usr/bin:/bin" }));
  return { ...s, launchd, reportPath: join(s.logDir, "report.json") };
}

async function selftest(h: ReturnType<typeof host>, args: string[] = []): Promise<Selftest> {
  const r = await start(world, "selftest", ["--config", h.path, "--report", h.reportPath, ...args], { ...h.host.env, SIM_LAUNCHD: h.launchd }).done;
  if (!existsSync(h.reportPath)) throw new Error(`no report (exit ${r.code}); stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  const report = JSON.parse(readFileSync(h.reportPath, "utf8")) as SelftestReport;
  const by = (check: string) => {
    const c = report.checks.find((x) => x.check === check);
    if (!c) throw new Error(`no check ${check} in ${report.checks.map((x) => x.check).join(", ")}`);
    return c;
  };
  return { s: h, code: r.code, stdout: r.stdout, report, by };
}

test("a good host: from a one-shot agent, every check passes or is a macOS-only SKIP; the table, the timings and the report", async () => {
  const h = host();
  const t = await selftest(h, ["--snapshot"]);
  const bad = t.report.checks.filter((c) => c.status === "FAIL" || c.status === "WARN");
  expect(bad).toEqual([]);
  expect(t.code).toBe(0);
  console.log(t.stdout);
}, 60_000);
