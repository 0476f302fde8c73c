/**
 * The simulator's own pseudo-random numbers. Output must be byte-identical for a seed on every
 * machine and Node version, so nothing here touches Math.random or the clock.
 *
 * Each device gets independent generators derived from (seed, device, purpose): a meter's
 * readings do not change when other meters are added, and turning anomalies off leaves the
 * normal readings of every device exactly as they were.
 */

/**
 * Mixes a list of integers into one 32-bit seed (the splitmix32 finaliser applied after each
 * part), so that nearby inputs such as (1, 7) and (1, 8) give unrelated streams.
 *
 * @example
 * const noise = new SimulationRandom(deriveSeed(seed, meterIndex, STREAM_NOISE));
 */
export function deriveSeed(...parts: number[]): number {
  let hash = 0x9e3779b9;
  for (const part of parts) {
    // Seeds may exceed 32 bits: fold the high part in as well.
    const low = part >>> 0;
    const high = Math.floor(part / 4294967296) >>> 0;
    hash = mix32((hash ^ low) >>> 0);
    hash = mix32((hash ^ high ^ 0x85ebca6b) >>> 0);
  }
  return hash >>> 0;
}

function mix32(value: number): number {
  let z = (value + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

/**
 * A small, fast generator (mulberry32: 32-bit state, period 2^32), plenty for telemetry noise.
 *
 * @example
 * const random = new SimulationRandom(42);
 * random.uniform(0.2, 0.6); // same value on every run
 */
export class SimulationRandom {
  private state: number;
  private spareNormal: number | undefined = undefined;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform in [low, high). */
  uniform(low: number, high: number): number {
    return low + (high - low) * this.next();
  }

  /** Uniform integer in [low, high], both ends included. */
  integer(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1));
  }

  /** Log-uniform in [low, high): every decade is equally likely (delays of 1 s and of 1 h both common). */
  logUniform(low: number, high: number): number {
    return Math.exp(this.uniform(Math.log(low), Math.log(high)));
  }

  /** Standard normal (Box-Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const spare = this.spareNormal;
      this.spareNormal = undefined;
      return spare;
    }
    // 1 - next() is in (0, 1], so the logarithm is finite.
    const radius = Math.sqrt(-2 * Math.log(1 - this.next()));
    const angle = 2 * Math.PI * this.next();
    this.spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new RangeError('pick: empty list');
    return item;
  }

  /** Rounds up or down at random so that the expected value is `value` (3.4 → 3 or 4, 4 with probability 0.4). */
  roundStochastic(value: number): number {
    const whole = Math.floor(value);
    return whole + (this.next() < value - whole ? 1 : 0);
  }
}

/**
 * A first-order autoregressive process with a stationary standard deviation and a correlation
 * time: the slow drift of a load or a temperature. Stepping it always draws exactly one normal,
 * so the sequence of later draws never depends on how the value is used.
 */
export class AutoRegressive {
  private value: number;
  private readonly keep: number;
  private readonly innovation: number;

  constructor(
    private readonly random: SimulationRandom,
    standardDeviation: number,
    correlationMs: number,
    stepMs: number,
  ) {
    this.keep = Math.exp(-stepMs / correlationMs);
    this.innovation = standardDeviation * Math.sqrt(1 - this.keep * this.keep);
    this.value = standardDeviation * random.normal();
  }

  step(): number {
    this.value = this.keep * this.value + this.innovation * this.random.normal();
    return this.value;
  }
}
