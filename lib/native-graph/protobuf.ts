/**
 * The little of Protocol Buffers' wire format that writing a TensorFlow graph needs
 * (https://protobuf.dev/programming-guides/encoding/): varints, 32-bit floats and length-delimited fields
 * (strings, bytes, nested messages). Fields are written in the order they are given; readers accept any order.
 */

const WIRE_VARINT = 0;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;

/** An append-only byte buffer with protobuf field writers. Each writer returns `this`, to chain. */
export class ProtoWriter {
  private buffer = new Uint8Array(256);
  private length = 0;

  /** The bytes written so far (a view; copy it before writing more). */
  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  /** A varint of a non-negative or negative integer (negatives as 64-bit two's complement: ten bytes). */
  private varint(value: number): void {
    if (!Number.isSafeInteger(value)) throw new Error(`protobuf: ${value} is not an integer that can be encoded exactly`);
    this.reserve(10);
    if (value >= 0) {
      let v = value;
      while (v >= 0x80) {
        this.buffer[this.length++] = (v % 0x80) | 0x80;
        v = Math.floor(v / 0x80);
      }
      this.buffer[this.length++] = v;
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.buffer[this.length++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buffer[this.length++] = Number(v);
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** An integer field (int32, int64, bool as 0/1, enum). */
  int(field: number, value: number): this {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
    return this;
  }

  /** A `bool` field. */
  bool(field: number, value: boolean): this {
    return this.int(field, value ? 1 : 0);
  }

  /** A `float` field (IEEE 754 single precision, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    this.reserve(4);
    new DataView(this.buffer.buffer, this.buffer.byteOffset).setFloat32(this.length, value, true);
    this.length += 4;
    return this;
  }

  /** A `bytes` field. */
  raw(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LENGTH);
    this.varint(value.length);
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
    return this;
  }

  /** A `string` field (UTF-8). */
  string(field: number, value: string): this {
    return this.raw(field, Buffer.from(value, 'utf8'));
  }

  /** A nested message field. */
  message(field: number, value: ProtoWriter): this {
    return this.raw(field, value.bytes());
  }
}
