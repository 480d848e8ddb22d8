// Checks a Mach-O's code signature as the kernel checks the pages it maps, on
// any OS, so the build refuses a darwin binary macOS would kill at launch (Bun's
// --compile has shipped ad-hoc signatures that did not match the file it wrote).
// The format is in Apple's cs_blobs.h, mach-o/loader.h and fat.h: the SuperBlob
// and CodeDirectories are big-endian, the thin Mach-O little-endian.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { MacosRunnerError } from "../lib/core/errors.ts";

const MH_MAGIC_64 = 0xfeedfacf;
const MH_MAGIC = 0xfeedface;
const FAT_MAGIC = 0xcafebabe;
const FAT_MAGIC_64 = 0xcafebabf;
const LC_CODE_SIGNATURE = 0x1d;
const SUPERBLOB_MAGIC = 0xfade0cc0;
const CODEDIRECTORY_MAGIC = 0xfade0c02;
const SLOT_CODEDIRECTORY = 0;
const SLOT_ALTERNATE_FIRST = 0x1000;
const SLOT_ALTERNATE_LAST = 0x1004;
/** cs_blobs.h CS_SUPPORTSCODELIMIT64. */
const VERSION_CODELIMIT64 = 0x20300;

const HASH_TYPES: Record<number, { name: string; algorithm: string; size: number }> = {
  1: { name: "SHA-1", algorithm: "sha1", size: 20 },
  2: { name: "SHA-256", algorithm: "sha256", size: 32 },
  3: { name: "SHA-256 truncated", algorithm: "sha256", size: 20 },
  4: { name: "SHA-384", algorithm: "sha384", size: 48 },
};

const CPU_NAMES: Record<number, string> = { 0x0100000c: "arm64", 0x01000007: "x86_64" };

export class CodeSignatureError extends MacosRunnerError {}

/** Thin or fat, of any width or byte order. */
export function isMachO(head: Uint8Array): boolean {
  if (head.length < 4) return false;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const le = view.getUint32(0, true);
  const be = view.getUint32(0, false);
  return [MH_MAGIC_64, MH_MAGIC].includes(le) || [MH_MAGIC_64, MH_MAGIC].includes(be) || be === FAT_MAGIC || be === FAT_MAGIC_64;
}

export function verifyCodeSignatureFile(path: string) {
  return verifyCodeSignature(readFileSync(path), path);
}

/** Per slice: its architecture and what each CodeDirectory covers. */
export function verifyCodeSignature(bytes: Uint8Array, name: string) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (problem: string) => new CodeSignatureError(`${name}: ${problem}`);
  if (bytes.length < 8) throw bad(`${bytes.length} bytes, too short for a Mach-O`);
  const magic = view.getUint32(0, false);
  if (magic === FAT_MAGIC || magic === FAT_MAGIC_64) {
    const wide = magic === FAT_MAGIC_64;
    const count = view.getUint32(4, false);
    const entry = wide ? 32 : 20;
    if (count === 0 || 8 + count * entry > bytes.length) throw bad(`fat header lists ${count} architectures, which do not fit in ${bytes.length} bytes`);
    const slices = [];
    for (let i = 0; i < count; i++) {
      const at = 8 + i * entry;
      const cpu = view.getUint32(at, false);
      const offset = wide ? Number(view.getBigUint64(at + 8, false)) : view.getUint32(at + 8, false);
      const size = wide ? Number(view.getBigUint64(at + 16, false)) : view.getUint32(at + 12, false);
      const arch = cpuName(cpu);
      if (offset + size > bytes.length) throw bad(`the ${arch} slice (${size} bytes at ${offset}) runs past the end of the file (${bytes.length} bytes)`);
      slices.push(verifyThin(bytes.subarray(offset, offset + size), `${name} (${arch} slice)`));
    }
    return slices;
  }
  return [verifyThin(bytes, name)];
}

const cpuName = (cpu: number): string => CPU_NAMES[cpu] ?? `cpu type 0x${cpu.toString(16)}`;
const hex = (n: number): string => `0x${n.toString(16).padStart(8, "0")}`;

function verifyThin(bytes: Uint8Array, name: string) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (problem: string) => new CodeSignatureError(`${name}: ${problem}`);
  if (bytes.length < 32) throw bad(`${bytes.length} bytes, too short for a Mach-O header`);
  const magic = view.getUint32(0, true);
  if (magic === MH_MAGIC) throw bad("a 32-bit Mach-O; only 64-bit binaries are checked");
  if (magic !== MH_MAGIC_64) throw bad(`not a little-endian 64-bit Mach-O (magic ${hex(view.getUint32(0, false))})`);
  const arch = cpuName(view.getUint32(4, true));
  const ncmds = view.getUint32(16, true);
  const sizeofcmds = view.getUint32(20, true);
  if (32 + sizeofcmds > bytes.length) throw bad(`load commands (${sizeofcmds} bytes) run past the end of the file`);

  let signature: { dataoff: number; datasize: number } | undefined;
  for (let i = 0, at = 32; i < ncmds; i++) {
    if (at + 8 > 32 + sizeofcmds) throw bad(`load command ${i} lies outside the ${sizeofcmds} bytes of load commands`);
    const cmd = view.getUint32(at, true);
    const cmdsize = view.getUint32(at + 4, true);
    if (cmdsize < 8 || at + cmdsize > 32 + sizeofcmds) throw bad(`load command ${i} has size ${cmdsize}, outside the load commands`);
    if (cmd === LC_CODE_SIGNATURE) {
      if (signature) throw bad("two LC_CODE_SIGNATURE load commands");
      signature = { dataoff: view.getUint32(at + 8, true), datasize: view.getUint32(at + 12, true) };
    }
    at += cmdsize;
  }
  if (!signature) throw bad("no code signature (no LC_CODE_SIGNATURE load command): macOS on Apple Silicon kills an unsigned binary at launch");
  const { dataoff, datasize } = signature;
  if (dataoff + datasize > bytes.length) {
    throw bad(`the signature is truncated: LC_CODE_SIGNATURE says ${datasize} bytes at offset ${dataoff} (to ${dataoff + datasize}), the file ends at ${bytes.length}`);
  }
  if (datasize < 12) throw bad(`the signature is ${datasize} bytes, too short for a SuperBlob`);

  const superMagic = view.getUint32(dataoff, false);
  if (superMagic !== SUPERBLOB_MAGIC) throw bad(`the signature at offset ${dataoff} is not an embedded SuperBlob (magic ${hex(superMagic)}, expected ${hex(SUPERBLOB_MAGIC)})`);
  const superLength = view.getUint32(dataoff + 4, false);
  if (superLength > datasize) throw bad(`the SuperBlob says ${superLength} bytes, LC_CODE_SIGNATURE only ${datasize}`);
  const count = view.getUint32(dataoff + 8, false);
  if (12 + count * 8 > superLength) throw bad(`the SuperBlob lists ${count} blobs, more than its ${superLength} bytes hold`);

  const blobs = new Map<number, Uint8Array>();
  for (let i = 0; i < count; i++) {
    const type = view.getUint32(dataoff + 12 + i * 8, false);
    const offset = view.getUint32(dataoff + 16 + i * 8, false);
    if (offset + 8 > superLength) throw bad(`blob ${i} (type ${hex(type)}) starts at ${offset}, outside the ${superLength}-byte SuperBlob`);
    const length = view.getUint32(dataoff + offset + 4, false);
    if (offset + length > superLength) throw bad(`blob ${i} (type ${hex(type)}) is ${length} bytes at ${offset}, past the end of the ${superLength}-byte SuperBlob`);
    blobs.set(type, bytes.subarray(dataoff + offset, dataoff + offset + length));
  }
  const directories = [...blobs].filter(([type]) => type === SLOT_CODEDIRECTORY || (type >= SLOT_ALTERNATE_FIRST && type <= SLOT_ALTERNATE_LAST));
  if (!blobs.has(SLOT_CODEDIRECTORY)) throw bad("the SuperBlob has no CodeDirectory (slot 0)");
  return {
    arch,
    codeDirectories: directories.map(([type, blob]) => verifyCodeDirectory(bytes, blob, blobs, dataoff, type === SLOT_CODEDIRECTORY ? "CodeDirectory" : `alternate CodeDirectory ${hex(type)}`, bad)),
  };
}

function verifyCodeDirectory(file: Uint8Array, cd: Uint8Array, blobs: Map<number, Uint8Array>, signatureOffset: number, which: string, bad: (problem: string) => CodeSignatureError) {
  const view = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  if (cd.length < 44) throw bad(`the ${which} is ${cd.length} bytes, too short`);
  const magic = view.getUint32(0, false);
  if (magic !== CODEDIRECTORY_MAGIC) throw bad(`the ${which} has magic ${hex(magic)}, expected ${hex(CODEDIRECTORY_MAGIC)}`);
  const version = view.getUint32(8, false);
  const hashOffset = view.getUint32(16, false);
  const nSpecialSlots = view.getUint32(24, false);
  const nCodeSlots = view.getUint32(28, false);
  let codeLimit = view.getUint32(32, false);
  const hashSize = view.getUint8(36);
  const hashTypeId = view.getUint8(37);
  const pageShift = view.getUint8(39);
  if (version >= VERSION_CODELIMIT64 && cd.length >= 64) {
    const codeLimit64 = Number(view.getBigUint64(56, false));
    if (codeLimit64 !== 0) codeLimit = codeLimit64;
  }
  const hashType = HASH_TYPES[hashTypeId];
  if (!hashType) throw bad(`the ${which} has hash type ${hashTypeId}, which is none of ${Object.entries(HASH_TYPES).map(([id, h]) => `${id} (${h.name})`).join(", ")}`);
  if (hashSize !== hashType.size) throw bad(`the ${which} says ${hashType.name} with ${hashSize}-byte hashes; ${hashType.name} slots are ${hashType.size} bytes`);

  if (codeLimit !== signatureOffset) {
    throw bad(`the ${which} covers ${codeLimit} bytes (codeLimit), but the signature starts at ${signatureOffset}: ${codeLimit < signatureOffset ? `${signatureOffset - codeLimit} bytes are not covered` : "it claims bytes of the signature itself"}`);
  }
  const pageSize = pageShift === 0 ? codeLimit : 2 ** pageShift;
  const expectedSlots = pageSize === 0 ? 0 : Math.ceil(codeLimit / pageSize);
  if (nCodeSlots !== expectedSlots) throw bad(`the ${which} has ${nCodeSlots} code slots; ${codeLimit} bytes in ${pageSize}-byte pages need ${expectedSlots}`);
  if (hashOffset < nSpecialSlots * hashSize || hashOffset + nCodeSlots * hashSize > cd.length) {
    throw bad(`the ${which}'s hash slots (offset ${hashOffset}, ${nSpecialSlots} special, ${nCodeSlots} code, ${hashSize} bytes each) lie outside its ${cd.length} bytes`);
  }

  const hash = (data: Uint8Array) => createHash(hashType.algorithm).update(data).digest().subarray(0, hashSize);
  const slot = (index: number) => cd.subarray(hashOffset + index * hashSize, hashOffset + (index + 1) * hashSize);
  const mismatches: number[] = [];
  for (let page = 0; page < nCodeSlots; page++) {
    const start = page * pageSize;
    if (!hash(file.subarray(start, Math.min(start + pageSize, codeLimit))).equals(slot(page))) mismatches.push(page);
  }
  if (mismatches.length) {
    const first = mismatches[0]!;
    const start = first * pageSize;
    const end = Math.min(start + pageSize, codeLimit) - 1;
    const more = mismatches.length > 1 ? ` (and ${mismatches.length - 1} more page${mismatches.length === 2 ? "" : "s"})` : "";
    throw bad(
      `page ${first} of ${nCodeSlots} (bytes ${start}-${end}) does not match its ${hashType.name} hash in the ${which}${more}: ` +
        `the signature does not match the file (written wrong, or the file changed after signing); macOS kills it at launch (Killed: 9)`,
    );
  }
  // Special slot k holds the hash of the SuperBlob's blob of type k (requirements, entitlements, ...).
  for (const [type, blob] of blobs) {
    if (type < 1 || type > nSpecialSlots) continue;
    if (!hash(blob).equals(slot(-type))) throw bad(`the ${which}'s special slot ${type} does not match the SuperBlob's blob of type ${type}`);
  }
  return { hashType: hashType.name, pageSize, pages: nCodeSlots, codeLimit };
}
