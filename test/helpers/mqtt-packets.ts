/** MQTT packets as bytes on the wire, for tests and benches that play a client or a broker. */

/** MQTT's variable-length "remaining length" (1 to 4 bytes, 7 bits each, low first). */
export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

/** A QoS 1 PUBLISH as a client sends it (a packet id after the topic); its body is 2 + topic + 2 + payload bytes. */
export function publishPacket(topic: string, payload: Buffer): Buffer {
  const t = Buffer.from(topic);
  const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, Buffer.from([0, 1]), payload]);
  return Buffer.concat([Buffer.from([0x32]), remainingLength(body.length), body]);
}
