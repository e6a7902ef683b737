// A quick reader for the plain block YAML that configs are usually written
// in: block mappings and sequences, one-line plain and quoted scalars, full
// and trailing comments. The general YAML parser costs about 100 µs per line
// when V8 runs without its optimising tiers (as meshlet does, to stay small),
// which at a thousand ports is most of a reload; this one leaves the work to
// the regular expression engine and stays a few milliseconds.
//
// It answers only when it is sure: anything outside that subset (anchors,
// aliases, tags, flow collections other than [] and {}, block or multi-line
// scalars, duplicate keys, tabs, non-ASCII, directives, odd indentation,
// numbers in any form but plain decimal integers, deep nesting) returns
// undefined, and the caller hands the text to the full parser. So every error
// message and every protection stays the full parser's, and an accepted text
// gives exactly the value the full parser gives (test/config/yaml-fast.test.ts
// compares both on generated and on real configs).

/** Deeper than the config's own limit: such a text goes to the full parser, which reports it. */
const MAX_DEPTH = 64;

/** Outside printable ASCII and the line feed: leave it to the full parser. */
const OUTSIDE = /[^\n\x20-\x7e]/;
/** A document marker or directive at the start of a line. */
const MARKER = /^(?:---|\.\.\.|%)/m;
/** A mapping entry: a simple key, the colon, and the rest of the line. */
const ENTRY = /^([A-Za-z][A-Za-z0-9_-]{0,127}):(?: +(.*))?$/;
/** Keys the core schema would read as null or a boolean, not as a string. */
const SPECIAL_KEY = /^(?:[Nn]ull|NULL|[Tt]rue|TRUE|[Ff]alse|FALSE)$/;
const DOUBLE_QUOTED = /^"((?:[^"\\]|\\["\\/bfnrt])*)"(?: +#.*)? *$/;
const SINGLE_QUOTED = /^'((?:[^']|'')*)'(?: +#.*)? *$/;
const EMPTY_FLOW = /^(\[\]|\{\})(?: +#.*)? *$/;
/** A plain scalar may not start with an indicator; "-" is fine before a letter, digit or dot. */
const PLAIN_START = /^(?:[^-?:,[\]{}#&*!|>'"%@`]|-[A-Za-z0-9.])/;
/** Inside a plain scalar: a mapping colon, or a flow indicator (kept out to stay simple). */
const PLAIN_REFUSED = /: |:$|[[\]{},]/;
const NULL = /^(?:~|[Nn]ull|NULL)$/;
const TRUE = /^(?:[Tt]rue|TRUE)$/;
const FALSE = /^(?:[Ff]alse|FALSE)$/;
const DECIMAL = /^[-+]?[0-9]+$/;
/** The core schema's other number forms (octal, hex, float, exponent, inf, nan): left to the full parser. */
const OTHER_NUMBER = /^(?:0o[0-7]+|0x[0-9a-fA-F]+|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)$/;

interface Line {
  indent: number;
  text: string;
}

/** Thrown inside to leave the subset; never escapes fastYaml. */
const OUTSIDE_SUBSET = Symbol('outside the subset');

function give(): never {
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- a private marker, caught below
  throw OUTSIDE_SUBSET;
}

/** The value of `text`, or undefined when the full parser must decide. */
export function fastYaml(text: string): unknown {
  if (OUTSIDE.test(text) || MARKER.test(text)) return undefined;
  const lines: Line[] = [];
  for (const raw of text.split('\n')) {
    const text = raw.trimStart();
    if (text === '' || text.startsWith('#')) continue;
    lines.push({ indent: raw.length - text.length, text: text.trimEnd() });
  }
  if (lines.length === 0 || lines[0]!.indent !== 0) return undefined;
  try {
    const reader = new Reader(lines);
    const value = reader.block(0, 0);
    return reader.done() ? value : undefined;
  } catch (err) {
    if (err === OUTSIDE_SUBSET) return undefined;
    throw err;
  }
}

class Reader {
  private i = 0;
  constructor(private readonly lines: Line[]) {}

  done(): boolean {
    return this.i === this.lines.length;
  }

  /** The indentation of the next line, -1 at the end. */
  private next(): number {
    return this.i < this.lines.length ? this.lines[this.i]!.indent : -1;
  }

  /** The mapping, sequence or scalar whose first line is the current one, at `indent`. */
  block(indent: number, depth: number): unknown {
    if (depth > MAX_DEPTH) give();
    const line = this.lines[this.i]!;
    if (isItem(line.text)) return this.sequence(indent, depth);
    if (ENTRY.test(line.text)) return this.mapping(indent, depth);
    // A scalar on the line after its key, as writers put an empty [] or {}.
    this.i++;
    return scalar(line.text);
  }

  private mapping(indent: number, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    while (this.next() === indent) {
      const m = ENTRY.exec(this.lines[this.i]!.text);
      if (!m) give();
      const key = m[1]!;
      if (SPECIAL_KEY.test(key) || Object.hasOwn(out, key)) give();
      this.i++;
      const rest = m[2] ?? '';
      let value: unknown;
      if (rest === '' || rest.startsWith('#')) {
        const n = this.next();
        if (n > indent) value = this.block(n, depth + 1);
        else if (n === indent && isItem(this.lines[this.i]!.text)) value = this.sequence(indent, depth + 1);
        else value = null;
      } else {
        value = scalar(rest);
      }
      out[key] = value;
      if (this.next() > indent) give();
    }
    return out;
  }

  private sequence(indent: number, depth: number): unknown[] {
    const out: unknown[] = [];
    while (this.next() === indent && isItem(this.lines[this.i]!.text)) {
      const line = this.lines[this.i]!;
      const rest = line.text.slice(1).trimStart();
      if (rest === '' || rest.startsWith('#')) {
        this.i++;
        const n = this.next();
        out.push(n > indent ? this.block(n, depth + 1) : null);
      } else if (isItem(rest)) {
        give();
      } else if (ENTRY.test(rest)) {
        // "- key: value": a mapping whose entries line up with this key.
        const column = indent + line.text.length - rest.length;
        this.lines[this.i] = { indent: column, text: rest };
        out.push(this.mapping(column, depth + 1));
      } else {
        this.i++;
        out.push(scalar(rest));
      }
      if (this.next() > indent) give();
    }
    return out;
  }
}

function isItem(text: string): boolean {
  return text === '-' || text.startsWith('- ');
}

/** A one-line scalar after "key: " or "- ", trailing comment included. */
function scalar(text: string): unknown {
  const c = text[0];
  if (c === '"') {
    const m = DOUBLE_QUOTED.exec(text);
    return m ? (JSON.parse(`"${m[1]!}"`) as string) : give();
  }
  if (c === "'") {
    const m = SINGLE_QUOTED.exec(text);
    return m ? m[1]!.replaceAll("''", "'") : give();
  }
  if (c === '[' || c === '{') {
    const m = EMPTY_FLOW.exec(text);
    return m ? (m[1] === '[]' ? [] : {}) : give();
  }
  if (!PLAIN_START.test(text)) give();
  const hash = text.indexOf(' #');
  const plain = (hash === -1 ? text : text.slice(0, hash)).trimEnd();
  if (PLAIN_REFUSED.test(plain)) give();
  if (NULL.test(plain)) return null;
  if (TRUE.test(plain)) return true;
  if (FALSE.test(plain)) return false;
  if (DECIMAL.test(plain)) return parseInt(plain, 10);
  if (OTHER_NUMBER.test(plain)) give();
  return plain;
}
