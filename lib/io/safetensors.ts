/**
 * A bounds-checked reader and an atomic writer for the safetensors format
 * (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a JSON header mapping each
 * tensor name to `{dtype, shape, data_offsets}`, then the tensors' bytes.
 *
 * The reader validates the whole header before it trusts any of it, and then reads tensor by tensor from the
 * file at their offsets, so a file larger than 2 GiB (a full Stable Diffusion UNet) never has to fit in one
 * buffer. Every failure is an error that names the file and, where there is one, the tensor.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DTYPE_SIZE, type SafetensorsDType, decodeElements, floatToBFloat16Bits, floatsToHalfBits, isDType } from './dtypes.js';
import { ensureDir } from './folders.js';
import { readExactly } from './shard-files.js';
import { WeightsFileError } from './weights-file-error.js';

/** The largest header this reader accepts (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;
/** The most dimensions a tensor may have. */
const MAX_RANK = 32;

/** One tensor's entry in a safetensors header. Offsets are relative to the start of the data area. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

/** A tensor's values as read: floats become float32, integers and booleans int32. */
export interface TensorData {
  readonly dtype: 'float32' | 'int32';
  readonly shape: number[];
  readonly data: Float32Array | Int32Array;
}

/** An error in a safetensors file: the message names the file and, where there is one, the tensor. */
export class SafetensorsError extends WeightsFileError {
  override name = 'SafetensorsError';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Parses and validates a safetensors header. `dataSize` is the number of bytes after the header.
 * Exported for tests and for tools that validate a header without a file.
 */
export function parseHeader(
  file: string,
  headerBytes: Uint8Array,
  dataSize: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsError(file, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsError(file, `header is not valid JSON (${(err as Error).message})`);
  }
  if (!isPlainObject(json)) throw new SafetensorsError(file, 'header must be a JSON object');

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) throw new SafetensorsError(file, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw new SafetensorsError(file, `__metadata__ value '${k}' must be a string`);
        metadata[k] = v;
      }
      continue;
    }
    tensors.set(name, parseEntry(file, name, entry, dataSize));
  }
  checkLayout(file, [...tensors.values()], dataSize);
  return { tensors, metadata };
}

function parseEntry(file: string, name: string, entry: unknown, dataSize: number): TensorInfo {
  if (name.length === 0) throw new SafetensorsError(file, 'a tensor has an empty name');
  if (!isPlainObject(entry)) throw new SafetensorsError(file, 'entry must be an object', name);
  for (const key of Object.keys(entry)) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') {
      throw new SafetensorsError(file, `unexpected field '${key}'`, name);
    }
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (!isDType(dtype)) {
    throw new SafetensorsError(file, `unknown or unsupported dtype ${JSON.stringify(dtype)}`, name);
  }
  if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every(isCount)) {
    throw new SafetensorsError(file, `shape must be a list of at most ${MAX_RANK} non-negative integers`, name);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw new SafetensorsError(file, 'data_offsets must be [begin, end] with non-negative integers', name);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw new SafetensorsError(file, `data_offsets [${begin}, ${end}] has begin after end`, name);
  if (end > dataSize) {
    throw new SafetensorsError(
      file,
      `data_offsets [${begin}, ${end}] run past the end of the data (${dataSize} bytes): the file is truncated or corrupt`,
      name,
    );
  }
  let count = 1;
  for (const d of shape as number[]) {
    count *= d;
    if (!Number.isSafeInteger(count)) throw new SafetensorsError(file, `shape [${shape.join(', ')}] is too large`, name);
  }
  const bytes = count * DTYPE_SIZE[dtype];
  if (bytes !== end - begin) {
    throw new SafetensorsError(
      file,
      `shape [${shape.join(', ')}] of ${dtype} needs ${bytes} bytes but data_offsets [${begin}, ${end}] give ${end - begin}`,
      name,
    );
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

/** The tensors must tile the data area exactly: no overlaps, no holes, nothing after the last one. */
function checkLayout(file: string, infos: TensorInfo[], dataSize: number): void {
  const sorted = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  let prev: TensorInfo | undefined;
  for (const t of sorted) {
    if (t.begin < pos) {
      throw new SafetensorsError(file, `its bytes [${t.begin}, ${t.end}] overlap tensor '${prev?.name}'`, t.name);
    }
    if (t.begin > pos) {
      throw new SafetensorsError(file, `gap of ${t.begin - pos} unused bytes before it (data must be contiguous)`, t.name);
    }
    pos = t.end;
    prev = t;
  }
  if (pos !== dataSize) {
    throw new SafetensorsError(file, `${dataSize - pos} bytes after the last tensor are not described by the header`);
  }
}

/**
 * An open safetensors file. The header is read and validated by {@link SafetensorsFile.open}; tensors are read
 * one at a time, at their offsets, on demand. Call {@link SafetensorsFile.close} when done.
 */
export class SafetensorsFile {
  private fd: number | undefined;

  private constructor(
    /** The file's path. */
    readonly path: string,
    fd: number,
    /** The tensors in the file, by name. */
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    /** The header's `__metadata__` (string to string). */
    readonly metadata: Readonly<Record<string, string>>,
    /** Byte offset of the data area in the file. */
    readonly dataStart: number,
  ) {
    this.fd = fd;
  }

  /** Opens `file` and validates its header. Throws {@link SafetensorsError} on anything malformed. */
  static open(file: string): SafetensorsFile {
    // A pipe or a device would block open() or be read forever: only a regular file is opened.
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(file);
    } catch {
      stat = undefined; // open() below says why
    }
    if (stat !== undefined && !stat.isFile()) throw new SafetensorsError(file, stat.isDirectory() ? 'is a folder, not a safetensors file' : 'is not a regular file (a device, pipe or socket)');
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch (err) {
      throw new SafetensorsError(file, `cannot open: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < 8) throw new SafetensorsError(file, `file is ${size} bytes, too short for a safetensors header`);
      const lenBuf = Buffer.alloc(8);
      readExactly(fd, lenBuf, 0, 8, 0, () => new SafetensorsError(file, 'unexpected end of file'));
      const headerLen = lenBuf.readBigUInt64LE(0);
      if (headerLen > BigInt(size - 8)) {
        throw new SafetensorsError(file, `header length ${headerLen} is larger than the file (${size} bytes)`);
      }
      if (headerLen > BigInt(MAX_HEADER_BYTES)) {
        throw new SafetensorsError(file, `header length ${headerLen} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
      }
      const n = Number(headerLen);
      if (n < 2) throw new SafetensorsError(file, `header length ${n} is too short for a JSON object`);
      const header = Buffer.alloc(n);
      readExactly(fd, header, 0, n, 8, () => new SafetensorsError(file, 'unexpected end of file'));
      const { tensors, metadata } = parseHeader(file, header, size - 8 - n);
      return new SafetensorsFile(file, fd, tensors, metadata, 8 + n);
    } catch (err) {
      fs.closeSync(fd);
      throw err;
    }
  }

  /** Tensor names in file order (by offset). */
  names(): string[] {
    return [...this.tensors.values()].sort((a, b) => a.begin - b.begin).map((t) => t.name);
  }

  /** The header entry of tensor `name`; throws naming the file if there is none. */
  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined) throw new SafetensorsError(this.path, 'no such tensor in the file', name);
    return t;
  }

  /** The raw bytes of tensor `name`, in a fresh buffer aligned for any element type. */
  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    if (this.fd === undefined) throw new SafetensorsError(this.path, 'file is closed', name);
    const bytes = new Uint8Array(new ArrayBuffer(t.end - t.begin));
    readExactly(this.fd, bytes, 0, bytes.length, this.dataStart + t.begin, () => new SafetensorsError(this.path, 'unexpected end of file', name));
    return bytes;
  }

  /** Tensor `name` as float32 (F64/F32/F16/BF16) or int32 (integer and boolean dtypes) values. */
  read(name: string): TensorData {
    const t = this.info(name);
    const count = t.shape.reduce((a, b) => a * b, 1);
    const data = decodeElements(this.readBytes(name), t.dtype, count, `${this.path}: tensor '${name}'`);
    return { dtype: data instanceof Float32Array ? 'float32' : 'int32', shape: [...t.shape], data };
  }

  /** Closes the file. Reading afterwards throws. */
  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Reads the header of `file` and closes it: the tensors' names, dtypes, shapes and the metadata. */
export function readSafetensorsHeader(file: string): { tensors: TensorInfo[]; metadata: Record<string, string> } {
  const f = SafetensorsFile.open(file);
  try {
    return { tensors: f.names().map((n) => f.info(n)), metadata: { ...f.metadata } };
  } finally {
    f.close();
  }
}

/** A tensor to write: values in a typed array, stored as `dtype` (float32 values may be stored as F16/BF16). */
export interface TensorToWrite {
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array | Uint8Array | Float64Array;
}

function encodeElements(name: string, t: TensorToWrite): Uint8Array {
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== count) {
    throw new Error(`tensor '${name}': shape [${t.shape.join(', ')}] has ${count} elements but data has ${t.data.length}`);
  }
  const src = t.data;
  const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (t.dtype) {
    case 'F32':
      return bytesOf(src instanceof Float32Array ? src : Float32Array.from(src));
    case 'F64':
      return bytesOf(src instanceof Float64Array ? src : Float64Array.from(src));
    case 'F16':
      return bytesOf(floatsToHalfBits(src instanceof Float32Array ? src : Float32Array.from(src)));
    case 'BF16':
      return bytesOf(Uint16Array.from(src, (v) => floatToBFloat16Bits(v)));
    case 'I32':
      return bytesOf(src instanceof Int32Array ? src : Int32Array.from(src));
    case 'I64':
      return bytesOf(BigInt64Array.from(src, (v) => BigInt(Math.trunc(v))));
    case 'I16':
      return bytesOf(Int16Array.from(src));
    case 'I8':
      return bytesOf(Int8Array.from(src));
    case 'U8':
      return bytesOf(Uint8Array.from(src));
    case 'BOOL':
      return Uint8Array.from(src, (v) => (v ? 1 : 0));
    case 'U16':
      return bytesOf(Uint16Array.from(src));
    case 'U32':
      return bytesOf(Uint32Array.from(src));
    case 'U64':
      return bytesOf(BigUint64Array.from(src, (v) => BigInt(Math.trunc(v))));
  }
}

/** A tensor to stream into a safetensors file: its header entry, and its raw little-endian bytes when their turn comes. */
export interface TensorBytesToWrite {
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** The byte length of the data (checked against what `bytes` gives). */
  readonly byteLength: number;
  /** The raw bytes, produced when they are written (so that only one tensor is in memory at a time). */
  bytes(): Uint8Array;
}

/**
 * Writes tensors given as raw bytes, in the order given, with optional string metadata: the header first, then each
 * tensor's bytes as it is produced, so a file of any size is written one tensor at a time. The file is written to a
 * temporary name beside it and renamed into place, so a failure never leaves a half-written file.
 */
export function writeSafetensorsBytes(file: string, entries: readonly (readonly [string, TensorBytesToWrite])[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__' || name.length === 0 || name in header) throw new Error(`cannot write a tensor named '${name}' (empty, reserved or twice)`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.byteLength !== count * DTYPE_SIZE[t.dtype]) {
      throw new Error(`tensor '${name}': shape [${t.shape.join(', ')}] of ${t.dtype} needs ${count * DTYPE_SIZE[t.dtype]} bytes, not ${t.byteLength}`);
    }
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + t.byteLength] };
    offset += t.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));

  ensureDir(path.dirname(path.resolve(file)), `the folder of ${file}`);
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, len);
    fs.writeSync(fd, headerBytes);
    for (const [name, t] of entries) {
      const bytes = t.bytes();
      if (bytes.length !== t.byteLength) throw new Error(`tensor '${name}': ${bytes.length} bytes given, ${t.byteLength} announced`);
      for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    }
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes tensors (sorted by name) and optional string metadata to `file` as safetensors. The file is written
 * to a temporary name beside it and renamed into place, so a failure never leaves a half-written file.
 */
export function writeSafetensors(
  file: string,
  tensors: Record<string, TensorToWrite> | ReadonlyMap<string, TensorToWrite>,
  metadata?: Record<string, string>,
): void {
  const entries = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  const encoded = entries.map(([name, t]): [string, TensorBytesToWrite] => {
    if (name === '__metadata__' || name.length === 0) throw new Error(`cannot write a tensor named '${name}'`);
    const bytes = encodeElements(name, t);
    return [name, { dtype: t.dtype, shape: t.shape, byteLength: bytes.length, bytes: () => bytes }];
  });
  writeSafetensorsBytes(file, encoded, metadata);
}
