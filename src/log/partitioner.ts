/**
 * The partition of a record key: murmur2 of the key's UTF-8 bytes, made positive, modulo the
 * number of partitions — the arithmetic of Kafka's default partitioner (the Java client's
 * `Utils.toPositive(Utils.murmur2(key)) % n`, which librdkafka's murmur2 partitioner and
 * kafkajs's default partitioner reproduce), so a device lands on the same partition number
 * in the embedded log and in a Kafka topic with as many partitions.
 *
 * @example
 * partitionOfKey('m-1', 4); // always the same number in 0..3
 */
export function partitionOfKey(key: string, partitions: number): number {
  if (partitions <= 1) return 0;
  return (murmur2(Buffer.from(key, 'utf8')) & 0x7fffffff) % partitions;
}

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const m = 0x5bd1e995;
  const length = data.length;
  let h = 0x9747b28c ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = (data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  // The last one to three bytes, as the Java original's fall-through switch does.
  const rest = length & 3;
  if (rest === 3) h ^= (data[whole + 2] as number) << 16;
  if (rest >= 2) h ^= (data[whole + 1] as number) << 8;
  if (rest >= 1) {
    h ^= data[whole] as number;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}
