// A minimal, deterministic protobuf *encoder*: just enough wire format to write ONNX ModelProto.
// Fields are emitted in the order they are written, so the same calls always give the same bytes
// (no maps, no reflection, no library whose output could change between versions).

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LEN = 2;

const utf8 = new TextEncoder();

export class ProtoWriter {
  // Byte arrays are kept as parts (no copy of large raw_data until finish()); small values are
  // collected in `pending` and flushed as one part.
  private parts: Uint8Array[] = [];
  private pending: number[] = [];
  private length = 0;

  private push(byte: number): void {
    this.pending.push(byte);
    this.length++;
  }

  private flush(): void {
    if (this.pending.length > 0) {
      this.parts.push(Uint8Array.from(this.pending));
      this.pending = [];
    }
  }

  /** Raw varint. int64 fields take bigint so negatives (e.g. Slice ends = -1) are exact. */
  private varint(value: number | bigint): void {
    // Negative int64 values are encoded as their 64-bit two's complement (10 bytes).
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.push(Number(v));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  private checkInt(value: number | bigint): void {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new RangeError(`not an integer (or not exactly representable): ${value}`);
    }
  }

  /** int32/int64/enum/bool field (varint). */
  int(field: number, value: number | bigint): this {
    this.checkInt(value);
    this.tag(field, WIRE_VARINT);
    this.varint(value);
    return this;
  }

  /** float field (fixed32, little-endian IEEE 754). */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    this.pushFloat32(value);
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.varint(value.length);
    this.flush();
    this.parts.push(value);
    this.length += value.length;
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  /** Embedded message: the callback writes the sub-message's fields. */
  message(field: number, build: (w: ProtoWriter) => void): this {
    const sub = new ProtoWriter();
    build(sub);
    return this.bytes(field, sub.finish());
  }

  /** Repeated int64 as one packed length-delimited field (proto3 style / [packed=true]). */
  packedInts(field: number, values: ReadonlyArray<number | bigint>): this {
    const sub = new ProtoWriter();
    for (const v of values) {
      this.checkInt(v);
      sub.varint(v);
    }
    return this.bytes(field, sub.finish());
  }

  /** Repeated float as one packed field of fixed32 values. */
  packedFloats(field: number, values: ArrayLike<number>): this {
    const sub = new ProtoWriter();
    for (let i = 0; i < values.length; i++) sub.pushFloat32(values[i]);
    return this.bytes(field, sub.finish());
  }

  private pushFloat32(value: number): void {
    const buf = new DataView(new ArrayBuffer(4));
    buf.setFloat32(0, value, true);
    for (let i = 0; i < 4; i++) this.push(buf.getUint8(i));
  }

  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const part of this.parts) {
      out.set(part, at);
      at += part.length;
    }
    return out;
  }
}
