'use strict';
// Canonical JSON, byte for byte what Python writes with
//   json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
// for plain JSON data. Three places where JSON.stringify differs are handled here:
// - keys are sorted by Unicode code point (Python), not by UTF-16 code unit (JS `sort`);
// - a non-integral number is written as Python's float repr ("1e-05", "1e+16"), since both
//   languages pick the same shortest round-trip digits but format them differently;
// - NaN and Infinity are refused (Python would write the non-JSON tokens NaN/Infinity).
// A JS number cannot say whether it was 2 or 2.0: integral values are written as integers.

function isSurrogate(unit) {
  return unit >= 0xd800 && unit <= 0xdfff;
}

// Code point order: a surrogate pair encodes a code point above U+FFFF, which sorts after
// every BMP character, even those above U+D800 that UTF-16 order puts after it.
function compareCodePoints(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      const xs = isSurrogate(x);
      const ys = isSurrogate(y);
      if (xs !== ys) return xs ? 1 : -1;
      return x - y;
    }
  }
  return a.length - b.length;
}

// Python's repr(float): shortest round-trip digits, positional for exponents -4..15,
// otherwise d.ddde[+-]XX with at least two exponent digits.
function pythonFloatRepr(x) {
  const [mantissa, expText] = x.toExponential().split('e');
  const exp = Number(expText);
  const sign = x < 0 ? '-' : '';
  const digits = mantissa.replace('-', '').replace('.', '');
  if (exp >= -4 && exp < 16) {
    if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
    const whole = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
    const frac = digits.slice(exp + 1);
    return `${sign}${whole}.${frac || '0'}`;
  }
  const abs = Math.abs(exp);
  const rest = digits.length > 1 ? `.${digits.slice(1)}` : '';
  return `${sign}${digits[0]}${rest}e${exp < 0 ? '-' : '+'}${abs < 10 ? '0' : ''}${abs}`;
}

function numberToJson(n) {
  if (!Number.isFinite(n)) throw new TypeError(`canonical JSON cannot encode ${n}`);
  if (Number.isSafeInteger(n)) return String(n);
  if (Number.isInteger(n)) return BigInt(n).toString(); // exact digits, as a Python int
  return pythonFloatRepr(n);
}

function canonicalJson(value) {
  const stack = new Set();

  function encode(v) {
    if (v !== null && typeof v === 'object' && typeof v.toJSON === 'function') v = v.toJSON();
    switch (typeof v) {
      case 'string': return JSON.stringify(v); // same escapes as Python with ensure_ascii=False
      case 'number': return numberToJson(v);
      case 'bigint': return v.toString();
      case 'boolean': return v ? 'true' : 'false';
      case 'object': break;
      default: return undefined; // undefined, functions, symbols: skipped like JSON.stringify
    }
    if (v === null) return 'null';
    if (stack.has(v)) throw new TypeError('canonical JSON cannot encode a circular structure');
    stack.add(v);
    let out;
    if (Array.isArray(v)) {
      out = `[${v.map((item) => encode(item) ?? 'null').join(',')}]`;
    } else {
      const parts = [];
      for (const key of Object.keys(v).sort(compareCodePoints)) {
        const encoded = encode(v[key]);
        if (encoded !== undefined) parts.push(`${JSON.stringify(key)}:${encoded}`);
      }
      out = `{${parts.join(',')}}`;
    }
    stack.delete(v);
    return out;
  }

  const text = encode(value);
  if (text === undefined) throw new TypeError(`canonical JSON cannot encode ${typeof value}`);
  return text;
}

module.exports = { canonicalJson, compareCodePoints, pythonFloatRepr };
