// Compiles every script in scripts/ into a standalone binary per target:
// dist/darwin-arm64/<name> (the product) and dist/linux-x64/<name> (what the
// tests run here). `--target linux-x64` builds one target only; `--only loop`
// one script only.
import { readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";

const TARGETS = { "darwin-arm64": "bun-darwin-arm64", "linux-x64": "bun-linux-x64" } as const;
type Target = keyof typeof TARGETS;

const { values } = parseArgs({ options: { target: { type: "string", multiple: true }, only: { type: "string", multiple: true } } });
const targets = (values.target ?? Object.keys(TARGETS)) as Target[];
for (const t of targets) if (!(t in TARGETS)) throw new Error(`unknown target '${t}', expected one of ${Object.keys(TARGETS).join(", ")}`);

const root = join(import.meta.dir, "..");
const scripts = readdirSync(join(root, "scripts"))
  .filter((f) => f.endsWith(".ts") && (!values.only || values.only.includes(basename(f, ".ts"))))
  .sort();
if (values.only && scripts.length !== values.only.length) throw new Error(`--only: no such script among ${values.only.join(", ")}`);

const failures: string[] = [];
const started = performance.now();
for (const target of targets) {
  const jobs = scripts.map(async (file) => {
    const name = basename(file, ".ts");
    const outfile = join(root, "dist", target, name);
    const proc = Bun.spawn(
      [process.execPath, "build", "--compile", "--minify-syntax", `--target=${TARGETS[target]}`, join(root, "scripts", file), "--outfile", outfile],
      { stdout: "pipe", stderr: "pipe", cwd: root },
    );
    const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    if (code !== 0) failures.push(`${target}/${name}: ${err.trim()}`);
  });
  await Promise.all(jobs);
}
if (failures.length) {
  console.error(`build failed for ${failures.length} binar${failures.length === 1 ? "y" : "ies"}:\n${failures.join("\n")}`);
  process.exit(1);
}
console.log(`built ${scripts.length} scripts for ${targets.join(", ")} in ${Math.round(performance.now() - started)} ms -> dist/`);
