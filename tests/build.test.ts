// tools/build.ts: one multi-call executable per target with a relative link
// per command, the darwin binary's code signature (and the check that
// refuses a corrupted one), and the dispatch on the name it runs as
// (compiled, linux-x64).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { linkSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { checkBinarySignature } from "../lib/host/doctor/host.ts";
import { isMachO, verifyCodeSignature, verifyCodeSignatureFile } from "../tools/codesign.ts";
import { BIN, ensureBinaries } from "./helpers/e2e.ts";

const root = join(import.meta.dir, "..");
// Every scripts/*.ts, and the registry's retention (registry/retention/main.ts).
const COMMANDS = readdirSync(join(root, "scripts"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => basename(f, ".ts"))
  .concat("retention")
  .sort();
// Its own output directory for the darwin build: other test files run dist/linux-x64 meanwhile.
const OUT = mkdtempSync(join(tmpdir(), "build-test-"));
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

function build(...args: string[]) {
  return spawnSync(process.execPath, [join(root, "tools/build.ts"), "--out", OUT, ...args], { encoding: "utf8" });
}

function run(exe: string, args: string[]) {
  const r = spawnSync(exe, args, { encoding: "utf8" });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("the darwin-arm64 macos-runner", () => {
  let bin: string;
  let bytes: Buffer;
  beforeAll(() => {
    const r = build("--target", "darwin-arm64");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    bin = join(OUT, "darwin-arm64", "macos-runner");
    bytes = readFileSync(bin);
  }, 120_000);

  test("is one Mach-O arm64 executable, and every command is a relative link to it", () => {
    const dir = join(OUT, "darwin-arm64");
    expect(readdirSync(dir).sort()).toEqual([...COMMANDS, "macos-runner"].sort());
    expect(bytes.readUInt32LE(0)).toBe(0xfeedfacf); // MH_MAGIC_64
    expect(bytes.readUInt32LE(4)).toBe(0x0100000c); // CPU_TYPE_ARM64
    expect(lstatSync(bin).isFile()).toBe(true);
    for (const name of COMMANDS) {
      expect(lstatSync(join(dir, name)).isSymbolicLink()).toBe(true);
      expect(readlinkSync(join(dir, name))).toBe("macos-runner");
    }
  });

  test("its code signature holds: SHA-256 page hashes that match every byte before the signature", () => {
    const [slice, ...others] = verifyCodeSignatureFile(bin);
    expect(others).toEqual([]);
    expect(slice!.arch).toBe("arm64");
    const cd = slice!.codeDirectories[0]!;
    expect(cd).toMatchObject({ hashType: "SHA-256", pageSize: 4096 });
    expect(cd.pages).toBe(Math.ceil(cd.codeLimit / 4096));
    // The signature is the file's tail: everything else is covered.
    expect(cd.codeLimit).toBeGreaterThan(bytes.length * 0.9);
  });

  test("a byte flipped in a code page fails the check, naming the page", () => {
    const copy = join(OUT, "flipped");
    const at = 5 * 4096 * 1000 + 123;
    const changed = Buffer.from(bytes);
    changed[at] = changed[at]! ^ 0xff;
    writeFileSync(copy, changed);
    try {
      expect(() => verifyCodeSignatureFile(copy)).toThrow(
        `${copy}: page 5000 of ${Math.ceil(signatureOf(bytes).dataoff / 4096)} (bytes 20480000-20484095) does not match its SHA-256 hash in the CodeDirectory`,
      );
    } finally {
      rmSync(copy);
    }
  });

  test("a truncated signature fails the check, saying where the file ends", () => {
    const copy = join(OUT, "truncated");
    writeFileSync(copy, bytes.subarray(0, bytes.length - 1000));
    try {
      expect(() => verifyCodeSignatureFile(copy)).toThrow(new RegExp(`^${copy}: the signature is truncated: LC_CODE_SIGNATURE says \\d+ bytes at offset \\d+ \\(to ${bytes.length}\\), the file ends at ${bytes.length - 1000}$`));
    } finally {
      rmSync(copy);
    }
  });

  test("a CodeDirectory that stops short of the signature fails, as does a binary with no signature", () => {
    const { dataoff, cd } = signatureOf(bytes);
    const short = Buffer.from(bytes);
    short.writeUInt32BE(dataoff - 4096, cd + 32); // codeLimit
    expect(() => verifyCodeSignature(short, "short")).toThrow(`short: the CodeDirectory covers ${dataoff - 4096} bytes (codeLimit), but the signature starts at ${dataoff}: 4096 bytes are not covered`);
    const unsigned = Buffer.from(bytes);
    unsigned.writeUInt32LE(0, loadCommandAt(bytes, 0x1d)); // LC_CODE_SIGNATURE -> an unknown command
    expect(() => verifyCodeSignature(unsigned, "unsigned")).toThrow("unsigned: no code signature (no LC_CODE_SIGNATURE load command)");
  });

  test("doctor's signature check asks codesign on macOS: FAIL with its words and the re-sign; off macOS and from source, SKIP saying why", async () => {
    const noCommands = async (argv: string[]) => {
      throw new Error(`no command expected, got ${argv.join(" ")}`);
    };
    // codesign is the process boundary on macOS; its answer for a changed file, as Apple's prints it.
    const codesign = async (argv: string[]) =>
      argv.join(" ") === `/usr/bin/codesign --verify --strict ${bin}`
        ? { code: 1, stdout: "", stderr: `${bin}: invalid signature (code or signature have been modified)\nIn architecture: arm64`, timedOut: false }
        : { code: 0, stdout: "", stderr: "", timedOut: false };
    expect(await checkBinarySignature(bin, "darwin", codesign)).toEqual([
      {
        status: "FAIL",
        check: "signature",
        found: `codesign --verify --strict rejects ${bin}: ${bin}: invalid signature (code or signature have been modified); In architecture: arm64; launchd's agents would be killed at launch (Killed: 9)`,
        fix: `re-sign it ad hoc: /usr/bin/codesign --force --sign - ${bin} (the playbook does this on each run), or copy a fresh build`,
      },
    ]);
    expect((await checkBinarySignature(join(OUT, "another"), "darwin", codesign))[0]!.status).toBe("PASS");
    expect(await checkBinarySignature(bin, "linux", noCommands)).toEqual([
      { status: "SKIP", check: "signature", found: `${bin} runs on linux, not macOS: a Mac checks its own with codesign`, fix: "" },
    ]);
    expect(await checkBinarySignature(undefined, "darwin", noCommands)).toEqual([{ status: "SKIP", check: "signature", found: "not the compiled binary (run from source)", fix: "" }]);
  });

  test("a fat file is checked slice by slice, a bad slice named by its architecture; an ELF is refused", () => {
    const fat = (slice: Buffer) => {
      const header = Buffer.alloc(16384);
      header.writeUInt32BE(0xcafebabe, 0);
      header.writeUInt32BE(1, 4);
      header.writeUInt32BE(0x0100000c, 8);
      header.writeUInt32BE(16384, 16);
      header.writeUInt32BE(slice.length, 20);
      header.writeUInt32BE(14, 24);
      return Buffer.concat([header, slice]);
    };
    expect(verifyCodeSignature(fat(bytes), "fat").map((s) => s.arch)).toEqual(["arm64"]);
    const changed = Buffer.from(bytes);
    changed[100_000] = changed[100_000]! ^ 0xff;
    expect(() => verifyCodeSignature(fat(changed), "fat")).toThrow("fat (arm64 slice): page 24 of ");
    const elf = Buffer.from("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "latin1");
    expect(isMachO(elf)).toBe(false);
    expect(isMachO(bytes)).toBe(true);
    expect(() => verifyCodeSignature(elf, "elf")).toThrow("elf: not a little-endian 64-bit Mach-O (magic 0x7f454c46)");
  });
});

/** Offset of the first load command `cmd` of a thin 64-bit Mach-O. */
function loadCommandAt(bytes: Buffer, cmd: number): number {
  for (let i = 0, at = 32; i < bytes.readUInt32LE(16); i++, at += bytes.readUInt32LE(at + 4)) if (bytes.readUInt32LE(at) === cmd) return at;
  throw new Error(`no load command 0x${cmd.toString(16)}`);
}

/** Where the signature and its CodeDirectory (slot 0) are. */
function signatureOf(bytes: Buffer): { dataoff: number; cd: number } {
  const dataoff = bytes.readUInt32LE(loadCommandAt(bytes, 0x1d) + 8);
  for (let i = 0; i < bytes.readUInt32BE(dataoff + 8); i++) {
    if (bytes.readUInt32BE(dataoff + 12 + i * 8) === 0) return { dataoff, cd: dataoff + bytes.readUInt32BE(dataoff + 16 + i * 8) };
  }
  throw new Error("no CodeDirectory");
}

test("an unknown target fails the build with its name", () => {
  const bad = build("--target", "windows-x64");
  expect(bad.status).not.toBe(0);
  expect(bad.stderr).toContain("unknown target 'windows-x64'");
});

// The build every end-to-end test runs (npm test makes it before the tests; a lone run here makes it if missing),
// only read here: a second build of the same target would test nothing the darwin one does not.
describe("the linux-x64 macos-runner", () => {
  let tmp: string;
  beforeAll(() => {
    ensureBinaries(COMMANDS);
    // Beside the build, on its file system: a hard link cannot cross to another (a tmpfs /tmp).
    tmp = mkdtempSync(join(BIN, "..", "build-test-"));
  }, 120_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  test("every command runs through its link, and as `macos-runner COMMAND`, with the same help", () => {
    for (const name of COMMANDS) {
      const link = run(join(BIN, name), ["--help"]);
      expect({ name, code: link.code, stderr: link.stderr }).toEqual({ name, code: 0, stderr: "" });
      expect(link.stdout).toStartWith(`${name}: `);
      expect(link.stdout).toContain(`Usage: ${name} [options]`);
      expect(link.stdout).toContain("Exit codes:");
      const sub = run(join(BIN, "macos-runner"), [name, "--help"]);
      expect({ name, code: sub.code, stdout: sub.stdout }).toEqual({ name, code: 0, stdout: link.stdout });
    }
  });

  test("the command gets the arguments after its name, and only it runs", () => {
    const r = run(join(BIN, "macos-runner"), ["loop", "--slot", "3"]);
    expect(r.code).toBe(64);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ command: "loop", kind: "usage", msg: expect.stringContaining("--slot must be 1 or 2, got '3'") });
  });

  test("a hard link and a symlink from another directory run the command they are named after", () => {
    linkSync(join(BIN, "macos-runner"), join(tmp, "token"));
    symlinkSync(join(BIN, "macos-runner"), join(tmp, "clone"));
    expect(run(join(tmp, "token"), ["--help"]).stdout).toStartWith("token: ");
    expect(run(join(tmp, "clone"), ["--help"]).stdout).toStartWith("clone: ");
  });

  test("macos-runner --help lists every command with its summary", () => {
    const r = run(join(BIN, "macos-runner"), ["--help"]);
    expect(r.code).toBe(0);
    const listed = r.stdout.split("Commands:\n")[1]!.split("\n\n")[0]!.split("\n");
    expect(listed.map((l) => l.trim().split(/\s+/)[0])).toEqual(COMMANDS);
    expect(listed.every((l) => /^ {2}\S+\s{2,}\S/.test(l))).toBe(true);
  });

  test("an unknown command, no command, or a link with an unknown name: exit 64 listing the commands", () => {
    symlinkSync(join(BIN, "macos-runner"), join(tmp, "pul"));
    for (const [exe, args, problem] of [
      [join(BIN, "macos-runner"), ["nope", "--help"], "unknown command 'nope'"],
      [join(BIN, "macos-runner"), [], "no command given"],
      [join(tmp, "pul"), ["--help"], "invoked as 'pul', which is not a command"],
    ] as const) {
      const r = run(exe, [...args]);
      expect({ problem, code: r.code, stdout: r.stdout }).toEqual({ problem, code: 64, stdout: "" });
      const line = JSON.parse(r.stderr.trim());
      expect(line).toMatchObject({ command: "macos-runner", kind: "usage", exit_code: 64 });
      expect(line.msg).toContain(problem);
      expect(line.msg).toContain(`commands: ${COMMANDS.join(", ")}`);
    }
  });
});
