import { STAT_NAMES, type StatName, type StreamSchema } from '../model/index.js';

/**
 * The expression language of `rule` detectors, parsed by recursive descent (no eval) and
 * compiled once into a tree of closures that pass values through a register array.
 *
 * Grammar (keywords are case-insensitive; `&&`, `||`, `!` are accepted for and, or, not):
 *
 *   condition  := or
 *   or         := and ( "or" and )*
 *   and        := not ( "and" not )*
 *   not        := "not" not | comparison
 *   comparison := sum ( ( "<" | "<=" | ">" | ">=" | "==" | "!=" ) sum )?
 *   sum        := product ( ( "+" | "-" ) product )*
 *   product    := unary ( ( "*" | "/" ) unary )*
 *   unary      := ( "-" | "+" ) unary | primary
 *   primary    := number | "pi" | metric | stat "(" metric "," window ")" | "(" condition-or-sum ")"
 *
 * `metric` is the reading's current value of a metric of the stream; `stat(metric, window)` is
 * statistic `stat` (count, min, max, avg, sum, stddev, first, last) of the latest emitted
 * aggregate of window spec `window` (e.g. `1m`, `1m/15s`) for the device.
 *
 * Values are numbers; conditions evaluate to 1 (holds), 0 (does not) or NaN (unknown: a value
 * it needs is absent). `and` is 0 if either side is 0, `or` is 1 if either side is 1, otherwise
 * an unknown side makes the result unknown.
 */

/** A parse or name error at a 1-based character position of the rule text. */
export class RuleSyntaxError extends Error {
  readonly position: number;
  constructor(position: number, message: string) {
    super(`syntax error at position ${position}: ${message}`);
    this.name = 'RuleSyntaxError';
    this.position = position;
  }
}

/**
 * One compiled step: computes a node's value into `registers[slot]`, after running the steps of
 * its operands. Values travel through the Float64Array, never as return values: a number
 * returned from (or passed to) a call that is not inlined is boxed, an allocation per reading.
 */
export type RuleStep = (metrics: Float64Array, windows: Float64Array, registers: Float64Array) => void;

/** One `stat(metric, window)` term of a rule. */
export interface WindowTerm {
  text: string;
  window: string;
  metric: string;
  metricIndex: number;
  stat: StatName;
  statIndex: number;
}

export interface CompiledRule {
  text: string;
  /**
   * Evaluates the rule: `metrics` is indexed by metric index, `windows` by window-term index;
   * the result is then in `registers[result]`: 1 holds, 0 does not, NaN unknown.
   */
  run: (metrics: Float64Array, windows: Float64Array) => void;
  registers: Float64Array;
  result: number;
  /** The same as `run`, returning the result (convenient; not for the hot path). */
  evaluate: (metrics: Float64Array, windows: Float64Array) => number;
  /** Metric indices the rule reads as current values. */
  metrics: number[];
  metricNames: string[];
  terms: WindowTerm[];
  /** For a top-level comparison: the registers of its two sides (value, threshold of findings); else undefined. */
  left: number | undefined;
  right: number | undefined;
}

interface Node {
  kind: 'number' | 'condition';
  run: RuleStep;
  /** Register holding the node's value. */
  slot: number;
  start: number;
  /** Set for comparisons: the registers of the two sides. */
  comparison?: { left: number; right: number };
}

const NOTHING: RuleStep = () => undefined;
const COMPARATORS = ['<=', '>=', '==', '!=', '<', '>'] as const;

/**
 * Parses and compiles a rule for a stream. Throws `RuleSyntaxError` with the position of the
 * first problem (syntax, unknown metric, statistic or window, a number where a condition is
 * needed or the reverse).
 *
 * @example
 * const rule = compileRule('avg(torque_nm, 1m) > 65', machines);
 * rule.terms[0]; // { text: 'avg(torque_nm, 1m)', window: '1m', metric: 'torque_nm', stat: 'avg', ... }
 */
export function compileRule(text: string, schema: StreamSchema): CompiledRule {
  const parser = new Parser(text, schema);
  const node = parser.parseTop();
  const registers = Float64Array.from(parser.initial);
  const step = node.run;
  const result = node.slot;
  const run = (metrics: Float64Array, windows: Float64Array) => step(metrics, windows, registers);
  return {
    text,
    run,
    registers,
    result,
    evaluate: (metrics, windows) => {
      run(metrics, windows);
      return registers[result]!;
    },
    metrics: parser.metrics.map((m) => m.index),
    metricNames: parser.metrics.map((m) => m.name),
    terms: parser.terms,
    left: node.comparison?.left,
    right: node.comparison?.right,
  };
}

class Parser {
  private position = 0;
  readonly metrics: Array<{ name: string; index: number }> = [];
  readonly terms: WindowTerm[] = [];
  /** Initial register values: constants keep theirs, computed registers start as NaN. */
  readonly initial: number[] = [];

  private register(value = Number.NaN): number {
    this.initial.push(value);
    return this.initial.length - 1;
  }

  constructor(
    private readonly text: string,
    private readonly schema: StreamSchema,
  ) {}

  parseTop(): Node {
    this.skipSpace();
    if (this.position >= this.text.length) this.fail('the rule is empty; expected a condition such as "avg(torque_nm, 1m) > 65"');
    const node = this.parseOr();
    this.skipSpace();
    if (this.position < this.text.length) this.fail(`unexpected ${this.describeHere()}; expected an operator or the end of the rule`);
    if (node.kind !== 'condition') {
      throw new RuleSyntaxError(node.start + 1, 'the rule is a number, expected a condition (a comparison such as "rpm < 1380")');
    }
    return node;
  }

  private parseOr(): Node {
    let left = this.parseAnd();
    for (;;) {
      if (!this.acceptWord('or') && !this.acceptSymbol('||')) return left;
      const right = this.parseAnd();
      this.requireCondition(left, 'or');
      this.requireCondition(right, 'or');
      const a = left.run;
      const b = right.run;
      const sa = left.slot;
      const sb = right.slot;
      const slot = this.register();
      left = {
        kind: 'condition',
        start: left.start,
        slot,
        run: (m, w, r) => {
          a(m, w, r);
          const x = r[sa]!;
          if (x === 1) {
            r[slot] = 1;
            return;
          }
          b(m, w, r);
          const y = r[sb]!;
          r[slot] = y === 1 ? 1 : x !== x || y !== y ? Number.NaN : 0;
        },
      };
    }
  }

  private parseAnd(): Node {
    let left = this.parseNot();
    for (;;) {
      if (!this.acceptWord('and') && !this.acceptSymbol('&&')) return left;
      const right = this.parseNot();
      this.requireCondition(left, 'and');
      this.requireCondition(right, 'and');
      const a = left.run;
      const b = right.run;
      const sa = left.slot;
      const sb = right.slot;
      const slot = this.register();
      left = {
        kind: 'condition',
        start: left.start,
        slot,
        run: (m, w, r) => {
          a(m, w, r);
          const x = r[sa]!;
          if (x === 0) {
            r[slot] = 0;
            return;
          }
          b(m, w, r);
          const y = r[sb]!;
          r[slot] = y === 0 ? 0 : x !== x || y !== y ? Number.NaN : 1;
        },
      };
    }
  }

  private parseNot(): Node {
    this.skipSpace();
    const start = this.position;
    if (this.acceptWord('not') || (this.peek('!') && !this.peek('!=') && this.acceptSymbol('!'))) {
      const operand = this.parseNot();
      this.requireCondition(operand, 'not');
      const a = operand.run;
      const sa = operand.slot;
      const slot = this.register();
      return {
        kind: 'condition',
        start,
        slot,
        run: (m, w, r) => {
          a(m, w, r);
          r[slot] = 1 - r[sa]!;
        },
      };
    }
    return this.parseComparison();
  }

  private parseComparison(): Node {
    const left = this.parseSum();
    this.skipSpace();
    const operator = COMPARATORS.find((c) => this.peek(c));
    if (!operator) return left;
    const operatorAt = this.position;
    this.position += operator.length;
    const right = this.parseSum();
    if (left.kind !== 'number' || right.kind !== 'number') {
      throw new RuleSyntaxError(operatorAt + 1, `"${operator}" compares numbers; a side is a condition (use parentheses or and/or)`);
    }
    this.skipSpace();
    if (COMPARATORS.some((c) => this.peek(c))) this.fail('comparisons cannot be chained; join them with "and"');
    const a = left.run;
    const b = right.run;
    const sa = left.slot;
    const sb = right.slot;
    const slot = this.register();
    const code = COMPARATORS.indexOf(operator);
    const run: RuleStep = (m, w, r) => {
      a(m, w, r);
      b(m, w, r);
      r[slot] = compare(r[sa]!, r[sb]!, code);
    };
    return { kind: 'condition', start: left.start, slot, run, comparison: { left: sa, right: sb } };
  }

  private parseSum(): Node {
    let left = this.parseProduct();
    for (;;) {
      this.skipSpace();
      const operatorAt = this.position;
      const plus = this.acceptSymbol('+');
      if (!plus && !this.acceptSymbol('-')) return left;
      const right = this.parseProduct();
      this.requireNumber(left, plus ? '+' : '-', operatorAt);
      this.requireNumber(right, plus ? '+' : '-', operatorAt);
      left = this.arithmetic(left, right, plus ? 0 : 1);
    }
  }

  private parseProduct(): Node {
    let left = this.parseUnary();
    for (;;) {
      this.skipSpace();
      const operatorAt = this.position;
      const times = this.acceptSymbol('*');
      if (!times && !this.acceptSymbol('/')) return left;
      const right = this.parseUnary();
      this.requireNumber(left, times ? '*' : '/', operatorAt);
      this.requireNumber(right, times ? '*' : '/', operatorAt);
      left = this.arithmetic(left, right, times ? 2 : 3);
    }
  }

  /** + (0), − (1), × (2), ÷ (3) of two number nodes. */
  private arithmetic(left: Node, right: Node, operator: number): Node {
    const a = left.run;
    const b = right.run;
    const sa = left.slot;
    const sb = right.slot;
    const slot = this.register();
    let run: RuleStep;
    if (operator === 0) {
      run = (m, w, r) => {
        a(m, w, r);
        b(m, w, r);
        r[slot] = r[sa]! + r[sb]!;
      };
    } else if (operator === 1) {
      run = (m, w, r) => {
        a(m, w, r);
        b(m, w, r);
        r[slot] = r[sa]! - r[sb]!;
      };
    } else if (operator === 2) {
      run = (m, w, r) => {
        a(m, w, r);
        b(m, w, r);
        r[slot] = r[sa]! * r[sb]!;
      };
    } else {
      run = (m, w, r) => {
        a(m, w, r);
        b(m, w, r);
        r[slot] = r[sa]! / r[sb]!;
      };
    }
    return { kind: 'number', start: left.start, slot, run };
  }

  private parseUnary(): Node {
    this.skipSpace();
    const start = this.position;
    if (this.acceptSymbol('-')) {
      const operand = this.parseUnary();
      this.requireNumber(operand, '-', start);
      const a = operand.run;
      const sa = operand.slot;
      const slot = this.register();
      return {
        kind: 'number',
        start,
        slot,
        run: (m, w, r) => {
          a(m, w, r);
          r[slot] = -r[sa]!;
        },
      };
    }
    if (this.acceptSymbol('+')) {
      const operand = this.parseUnary();
      this.requireNumber(operand, '+', start);
      return { ...operand, start };
    }
    return this.parsePrimary();
  }

  private parsePrimary(): Node {
    this.skipSpace();
    const start = this.position;
    if (this.position >= this.text.length) this.fail('unexpected end of the rule; expected a number, a metric or "("');
    const number = /^(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/.exec(this.text.slice(this.position));
    if (number) {
      this.position += number[0].length;
      return { kind: 'number', start, slot: this.register(Number(number[0])), run: NOTHING };
    }
    if (this.acceptSymbol('(')) {
      const inner = this.parseOr();
      this.skipSpace();
      if (!this.acceptSymbol(')')) this.fail(`expected ")" to close the "(" at position ${start + 1}, got ${this.describeHere()}`);
      return { ...inner, start };
    }
    const name = this.readIdentifier();
    if (name === undefined) this.fail(`expected a number, a metric or "(", got ${this.describeHere()}`);
    this.skipSpace();
    if (this.peek('(')) return this.parseStat(name, start);
    if (name.toLowerCase() === 'pi') return { kind: 'number', start, slot: this.register(Math.PI), run: NOTHING };
    const index = this.metricIndex(name, start);
    if (!this.metrics.some((m) => m.index === index)) this.metrics.push({ name, index });
    const slot = this.register();
    return {
      kind: 'number',
      start,
      slot,
      run: (m, _w, r) => {
        r[slot] = m[index]!;
      },
    };
  }

  private parseStat(stat: string, start: number): Node {
    const statIndex = (STAT_NAMES as readonly string[]).indexOf(stat.toLowerCase());
    if (statIndex < 0) throw new RuleSyntaxError(start + 1, `unknown statistic "${stat}"; expected one of ${STAT_NAMES.join(', ')}`);
    this.position++; // "("
    this.skipSpace();
    const metricAt = this.position;
    const metric = this.readIdentifier();
    if (metric === undefined) this.fail(`expected a metric name as the first argument of ${stat}(), got ${this.describeHere()}`);
    const metricIndex = this.metricIndex(metric, metricAt);
    this.skipSpace();
    if (!this.acceptSymbol(',')) this.fail(`expected "," and a window after ${stat}(${metric}, got ${this.describeHere()}`);
    this.skipSpace();
    const windowAt = this.position;
    const match = /^[^,()\s]+/.exec(this.text.slice(this.position));
    if (!match) this.fail(`expected a window name (one of ${this.windowNames()}), got ${this.describeHere()}`);
    const window = match[0];
    if (!this.schema.windows.some((w) => w.name === window)) {
      throw new RuleSyntaxError(windowAt + 1, `unknown window "${window}"; the stream has ${this.windowNames()}`);
    }
    this.position += window.length;
    this.skipSpace();
    if (!this.acceptSymbol(')')) this.fail(`expected ")" after the window name, got ${this.describeHere()}`);
    const canonical = STAT_NAMES[statIndex]!;
    const text = `${canonical}(${metric}, ${window})`;
    let termIndex = this.terms.findIndex((t) => t.text === text);
    if (termIndex < 0) {
      termIndex = this.terms.length;
      this.terms.push({ text, window, metric, metricIndex, stat: canonical, statIndex });
    }
    const index = termIndex;
    const slot = this.register();
    return {
      kind: 'number',
      start,
      slot,
      run: (_m, w, r) => {
        r[slot] = w[index]!;
      },
    };
  }

  private metricIndex(name: string, at: number): number {
    const index = this.schema.metricIndex[name];
    if (index === undefined) {
      throw new RuleSyntaxError(at + 1, `unknown metric "${name}"; the stream has ${this.schema.metrics.map((m) => m.name).join(', ')}`);
    }
    return index;
  }

  private windowNames(): string {
    return this.schema.windows.length ? this.schema.windows.map((w) => w.name).join(', ') : 'no windows';
  }

  private requireCondition(node: Node, operator: string): void {
    if (node.kind !== 'condition') {
      throw new RuleSyntaxError(node.start + 1, `"${operator}" joins conditions, got a number (compare it, e.g. "... > 0")`);
    }
  }

  private requireNumber(node: Node, operator: string, at: number): void {
    if (node.kind !== 'number') throw new RuleSyntaxError(at + 1, `"${operator}" needs numbers, got a condition`);
  }

  private readIdentifier(): string | undefined {
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.position));
    if (!match) return undefined;
    this.position += match[0].length;
    return match[0];
  }

  private acceptWord(word: string): boolean {
    this.skipSpace();
    const candidate = this.text.slice(this.position, this.position + word.length);
    if (candidate.toLowerCase() !== word) return false;
    const next = this.text[this.position + word.length];
    if (next !== undefined && /[A-Za-z0-9_]/.test(next)) return false;
    this.position += word.length;
    return true;
  }

  private acceptSymbol(symbol: string): boolean {
    this.skipSpace();
    if (!this.peek(symbol)) return false;
    this.position += symbol.length;
    return true;
  }

  private peek(symbol: string): boolean {
    return this.text.startsWith(symbol, this.position);
  }

  private skipSpace(): void {
    while (this.position < this.text.length && /\s/.test(this.text[this.position]!)) this.position++;
  }

  private describeHere(): string {
    if (this.position >= this.text.length) return 'the end of the rule';
    const word = /^[A-Za-z0-9_.]+/.exec(this.text.slice(this.position));
    return `"${word ? word[0] : this.text[this.position]}"`;
  }

  private fail(message: string): never {
    throw new RuleSyntaxError(this.position + 1, message);
  }
}

/** Comparison by its index in COMPARATORS: <=, >=, ==, !=, <, >. NaN when a side is unknown. */
function compare(x: number, y: number, operator: number): number {
  if (x !== x || y !== y) return Number.NaN;
  switch (operator) {
    case 0:
      return x <= y ? 1 : 0;
    case 1:
      return x >= y ? 1 : 0;
    case 2:
      return x === y ? 1 : 0;
    case 3:
      return x !== y ? 1 : 0;
    case 4:
      return x < y ? 1 : 0;
    default:
      return x > y ? 1 : 0;
  }
}
