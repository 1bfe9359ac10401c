// Decoding JSON the way Go's encoding/json decodes it into the structs of
// manifest/, so that this verifier reaches the same verdict as the Go one on
// any input, not only on well-formed ones. What differs from JSON.parse:
//   - object keys match struct fields exactly, else case-insensitively;
//     unknown keys are ignored; duplicate keys decode into the same value;
//   - null leaves strings, numbers, booleans, times and structs unchanged and
//     empties slices and maps;
//   - int64 fields take only integer literals ("1.0" and "1e2" are errors);
//   - []byte fields take standard padded base64 (or an array of bytes);
//   - times take the raw text between the quotes, parsed as RFC 3339.
// A type mismatch anywhere is an error; callers report it as "malformed".
//
// One deliberate difference: integers beyond Number.MAX_SAFE_INTEGER are
// errors here (Go takes up to 2^63-1). deploy never writes such values.

/** A parsed JSON value that keeps the source text of numbers and strings. */
export type Node =
  | { k: 'null' }
  | { k: 'bool'; v: boolean }
  | { k: 'num'; raw: string }
  | { k: 'str'; v: string; raw: string }
  | { k: 'arr'; items: Node[] }
  | { k: 'obj'; entries: [string, Node][] };

const MAX_DEPTH = 10000; // as Go's scanner
const WS = /[ \t\n\r]*/y;
const NUM = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const STR = /"(?:[^"\\\u0000-\u001f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"/y;

/**
 * Parses text. mode "whole" is json.Unmarshal (nothing but whitespace may
 * follow the value); mode "first" is json.Decoder.Decode followed by the
 * More() check of manifest.strictUnmarshal (what follows may only be
 * whitespace, or start with '}' or ']').
 */
export function parse(text: string, mode: 'whole' | 'first'): Node {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at offset ${i}`);
  };
  const ws = () => {
    WS.lastIndex = i;
    WS.exec(text);
    i = WS.lastIndex;
  };
  const token = (re: RegExp): string | null => {
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m) return null;
    i = re.lastIndex;
    return m[0];
  };
  const string = (): { v: string; raw: string } => {
    const raw = token(STR);
    if (raw === null) return fail('invalid string');
    return { v: wellFormed(JSON.parse(raw) as string), raw };
  };
  const key = (): string => {
    ws();
    if (text[i] !== '"') fail('expected a key');
    const k = string().v;
    ws();
    if (text[i++] !== ':') fail("expected ':'");
    return k;
  };
  // Iterative, so that deep nesting cannot overflow the call stack.
  type Open = { node: Extract<Node, { k: 'arr' | 'obj' }>; key: string };
  const stack: Open[] = [];
  let done: Node | undefined;
  while (done === undefined) {
    // Read one value, or open a container.
    ws();
    const c = text[i];
    let v: Node | undefined;
    if (c === '{' || c === '[') {
      if (stack.length >= MAX_DEPTH) fail('exceeded max depth');
      i++;
      const node: Open['node'] = c === '{' ? { k: 'obj', entries: [] } : { k: 'arr', items: [] };
      ws();
      if (text[i] === (c === '{' ? '}' : ']')) {
        i++;
        v = node;
      } else {
        stack.push({ node, key: c === '{' ? key() : '' });
        continue;
      }
    } else if (c === '"') {
      v = { k: 'str', ...string() };
    } else {
      const lit = LITERALS.find(([l]) => text.startsWith(l, i));
      const raw = lit ? null : token(NUM);
      if (lit) {
        i += lit[0].length;
        v = lit[1];
      } else if (raw !== null) {
        v = { k: 'num', raw };
      } else {
        return fail('invalid value');
      }
    }
    // Store it, closing the containers it completes.
    for (;;) {
      const top = stack[stack.length - 1];
      if (!top) {
        done = v;
        break;
      }
      if (top.node.k === 'arr') top.node.items.push(v);
      else top.node.entries.push([top.key, v]);
      ws();
      const d = text[i++];
      if (d === ',') {
        if (top.node.k === 'obj') top.key = key();
        break;
      }
      if (d !== (top.node.k === 'obj' ? '}' : ']')) fail(`expected ',' or '${top.node.k === 'obj' ? '}' : ']'}'`);
      stack.pop();
      v = top.node;
    }
  }
  ws();
  if (i < text.length) {
    const c = text[i];
    if (mode === 'whole' || (c !== '}' && c !== ']')) fail('trailing data after the JSON value');
  }
  return done;
}

const LITERALS: [string, Node][] = [
  ['null', { k: 'null' }],
  ['true', { k: 'bool', v: true }],
  ['false', { k: 'bool', v: false }],
];

// Go decodes a lone surrogate escape (\ud800) as U+FFFD.
function wellFormed(s: string): string {
  if (!/[\ud800-\udfff]/.test(s)) return s;
  let out = '';
  for (let j = 0; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c >= 0xd800 && c <= 0xdbff && j + 1 < s.length) {
      const d = s.charCodeAt(j + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[j] + s[j + 1];
        j++;
        continue;
      }
    }
    out += c >= 0xd800 && c <= 0xdfff ? '\ufffd' : s[j];
  }
  return out;
}

// ---------------------------------------------------------------------------
// Decoders: each takes a node and the current value and returns the new one,
// as Go decodes into an existing value.

export type Decoder<T> = (n: Node, cur: T) => T;

function mismatch(n: Node, want: string): never {
  throw new TypeError(`cannot decode ${n.k === 'num' ? 'number ' + n.raw : n.k} into ${want}`);
}

export const str: Decoder<string> = (n, cur) => (n.k === 'null' ? cur : n.k === 'str' ? n.v : mismatch(n, 'string'));

export const bool: Decoder<boolean> = (n, cur) => (n.k === 'null' ? cur : n.k === 'bool' ? n.v : mismatch(n, 'bool'));

const INT = /^-?[0-9]+$/;

function integer(want: string, min: bigint, max: bigint): Decoder<number> {
  return (n, cur) => {
    if (n.k === 'null') return cur;
    // Go parses unsigned kinds with ParseUint, which refuses "-0".
    if (n.k !== 'num' || !INT.test(n.raw) || (min === 0n && n.raw[0] === '-')) return mismatch(n, want);
    const b = BigInt(n.raw);
    if (b < min || b > max) return mismatch(n, want);
    if (b > BigInt(Number.MAX_SAFE_INTEGER) || b < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new RangeError(`${n.raw} is beyond the integers this verifier takes`);
    }
    return Number(b);
  };
}

export const int64 = integer('int64', -(1n << 63n), (1n << 63n) - 1n);
const uint8 = integer('uint8', 0n, 255n);

/** []byte: base64 text, or an array of byte values. */
export const bytes: Decoder<Uint8Array> = (n, cur) => {
  if (n.k === 'null') return new Uint8Array(0);
  if (n.k === 'str') return decodeBase64(n.v);
  if (n.k === 'arr') {
    const s: Slice<number> = slice(uint8, () => 0)(n, cur as unknown as Slice<number>);
    const out: Uint8Array & { [BACKING]?: number[] } = Uint8Array.from(s);
    out[BACKING] = s[BACKING];
    return out;
  }
  return mismatch(n, '[]byte');
};

/**
 * time.Time: Go hands the raw JSON text to Time.UnmarshalJSON, which takes
 * null, or a quoted RFC 3339 time with no escapes to undo. The value kept is
 * the text between the quotes.
 */
export const time: Decoder<string> = (n, cur) => {
  if (n.k === 'null') return cur;
  const inner = n.k === 'str' ? n.raw.slice(1, -1) : '';
  if (n.k !== 'str' || parseTime(inner) === null) throw new TypeError(`cannot decode ${n.k} into time: want an RFC 3339 string`);
  return inner;
};

// Capacity kept behind a decoded slice: decoding an array into a slice that
// held more elements reuses them, as Go's decoder does.
const BACKING = Symbol('backing');
type Slice<T> = T[] & { [BACKING]?: T[] };

export function slice<T>(elem: Decoder<T>, zero: () => T): Decoder<T[]> {
  return (n, cur: Slice<T>) => {
    if (n.k === 'null') return [];
    if (n.k !== 'arr') return mismatch(n, 'slice');
    if (n.items.length === 0) return [];
    const back = cur[BACKING] ?? [...cur];
    n.items.forEach((item, i) => {
      back[i] = elem(item, i < back.length ? back[i] : zero());
    });
    const out: Slice<T> = back.slice(0, n.items.length);
    out[BACKING] = back;
    return out;
  };
}

/** map[string]T, as a null-prototype object. Entries merge into an existing map. */
export function map<T>(elem: Decoder<T>, zero: () => T): Decoder<Record<string, T>> {
  return (n, cur) => {
    if (n.k === 'null') return Object.create(null) as Record<string, T>;
    if (n.k !== 'obj') return mismatch(n, 'map');
    const out = Object.assign(Object.create(null) as Record<string, T>, cur);
    for (const [key, v] of n.entries) out[key] = elem(v, zero());
    return out;
  };
}

/** A struct with the given JSON field names. */
export function struct<T extends object>(fields: { [K in keyof T]: Decoder<T[K]> }, zero: () => T): Decoder<T> {
  const byName = new Map<string, keyof T>();
  const byFold = new Map<string, keyof T>();
  for (const name of Object.keys(fields) as (keyof T & string)[]) {
    byName.set(name, name);
    byFold.set(fold(name), name);
  }
  return (n, cur) => {
    if (n.k === 'null') return cur;
    if (n.k !== 'obj') return mismatch(n, 'object');
    const out = { ...(cur ?? zero()) };
    for (const [key, v] of n.entries) {
      const f = byName.get(key) ?? byFold.get(fold(key));
      if (f !== undefined) out[f] = fields[f](v, out[f]);
    }
    return out;
  };
}

// Go matches field names under Unicode simple case folding; for ASCII names
// the only non-ASCII equivalents are the Kelvin sign and the long s.
function fold(s: string): string {
  return s.replace(/[a-z\u212a\u017f]/g, (c) => (c === '\u212a' ? 'K' : c === '\u017f' ? 'S' : c.toUpperCase()));
}

// ---------------------------------------------------------------------------
// Base64 (standard alphabet, padded), with Go's rules: CR and LF are ignored
// anywhere, padding is required, unused trailing bits may be set.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_SHAPE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function decodeBase64(s: string): Uint8Array {
  s = s.replace(/[\r\n]/g, '');
  if (!B64_SHAPE.test(s)) throw new TypeError('illegal base64 data');
  const body = s.replace(/=+$/, '');
  const out = new Uint8Array((body.length * 3) >> 2);
  let bits = 0;
  let acc = 0;
  let j = 0;
  for (const c of body) {
    acc = (acc << 6) | B64.indexOf(c);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[j++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

export function encodeBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s += B64[n >> 18] + B64[(n >> 12) & 63];
    s += i + 1 < b.length ? B64[(n >> 6) & 63] : '=';
    s += i + 2 < b.length ? B64[n & 63] : '=';
  }
  return s;
}

// ---------------------------------------------------------------------------
// RFC 3339 times as Go's time.Parse(time.RFC3339) takes them: a 1- or
// 2-digit hour, '.' or ',' before the fraction (digits past nine ignored),
// "Z" or an offset of up to 24:60.

const TIME = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]+))?(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))$/;

/** Nanoseconds since the Unix epoch, or null if s is not a time Go parses. */
export function parseTime(s: string): bigint | null {
  const m = TIME.exec(s);
  if (!m) return null;
  const [year, month, day, hour, min, sec] = m.slice(1, 7).map(Number);
  const daysIn = [31, year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (month < 1 || month > 12 || day < 1 || day > daysIn[month - 1] || hour > 23 || min > 59 || sec > 59) return null;
  let offset = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 24 || om > 60) return null;
    offset = (oh * 60 + om) * 60 * (m[9] === '-' ? -1 : 1);
  }
  const nanos = BigInt(((m[7] ?? '') + '000000000').slice(0, 9));
  const seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec - offset;
  return BigInt(seconds) * 1_000_000_000n + nanos;
}

// Days from 1970-01-01 to the given proleptic Gregorian date.
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
