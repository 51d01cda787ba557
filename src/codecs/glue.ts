/**
 * The JavaScript that runs inside each codec's engine, around the vendor's file (docs/codecs.md).
 *
 * Before the file: a `console` that keeps what the codec prints (bounded), and `module`/`exports`
 * for files written to be required by Node test harnesses as well.
 *
 * After the file: `__lb`, one entry per operation, taking and returning JSON text (one string in,
 * one string out: the cheapest crossing of the engine boundary). It finds the codec's functions in
 * any of the three forms (TS013, The Things Network v2, ChirpStack v3), adapts them to TS013's
 * shapes, and checks that what the codec returned is JSON (no functions, NaN, cycles…). Then it
 * freezes every built-in, so a call cannot change what the next call sees.
 *
 * Exceptions thrown by the codec are not caught here: the host reads them from the engine, where
 * a timeout or an out-of-memory cannot be mistaken for the codec's own error.
 */

/** Runs first. */
export const PRELUDE = String.raw`
var module = { exports: {} };
var exports = module.exports;
var console = (function () {
  var lines = [];
  var MAX_LINES = 20, MAX_CHARS = 500;
  function keep (level) {
    return function () {
      if (lines.length >= MAX_LINES) return;
      var parts = [];
      for (var i = 0; i < arguments.length; i++) {
        var a = arguments[i];
        try { parts.push(typeof a === 'string' ? a : JSON.stringify(a)); } catch (e) { parts.push(String(a)); }
      }
      lines.push(level + ': ' + parts.join(' ').slice(0, MAX_CHARS));
    };
  }
  return { log: keep('log'), info: keep('info'), debug: keep('debug'), warn: keep('warn'), error: keep('error'), __take: function () { if (lines.length === 0) return undefined; var l = lines; lines = []; return l; } };
})();
`

/**
 * Runs after the file. `standardGlobals` are the global names the engine had before the file ran:
 * those are the built-ins to freeze; the file's own globals stay its own.
 */
export function epilogue (standardGlobals: string[]): string {
  return String.raw`
(function (g, STANDARD) {
  'use strict';
  var parse = JSON.parse, stringify = JSON.stringify, isArray = Array.isArray, keys = Object.keys;
  var getPrototypeOf = Object.getPrototypeOf, ObjectProto = Object.prototype, DateCtor = Date, isInteger = Number.isInteger;
  var defineProperty = Object.defineProperty, freeze = Object.freeze, ownKeys = Reflect.ownKeys, getOwn = Object.getOwnPropertyDescriptor;
  var take = console.__take;
  var MAX_DEPTH = 32;

  function pick (name) {
    var m = module.exports, e = exports;
    if (typeof g[name] === 'function') return g[name];
    if (m && typeof m[name] === 'function') return m[name];
    if (e && typeof e[name] === 'function') return e[name];
    return undefined;
  }
  var F = {
    decodeUplink: pick('decodeUplink'), encodeDownlink: pick('encodeDownlink'), decodeDownlink: pick('decodeDownlink'),
    Decoder: pick('Decoder'), Encoder: pick('Encoder'), Decode: pick('Decode'), Encode: pick('Encode')
  };

  /**
   * A plain copy of what the codec returned, made of JSON values only, or a Failure naming where it
   * is not JSON. The copy is what gets serialized: a getter, a Proxy trap or a toJSON method runs
   * once, here, and cannot give JSON.stringify anything this check did not see.
   * "where" holds the keys down to the current value; the path is spelled only on failure.
   */
  var dateToIso = Date.prototype.toISOString;
  function copy (v, where, depth, stack) {
    if (v === null) return null;
    var t = typeof v;
    if (t === 'string' || t === 'boolean') return v;
    if (t === 'number') { if (isFinite(v)) return v; throw notJson(where, 'is ' + String(v)); }
    if (t === 'undefined') throw notJson(where, 'is undefined');
    if (t === 'function') throw notJson(where, 'is a function');
    if (t === 'bigint') throw notJson(where, 'is a BigInt');
    if (t === 'symbol') throw notJson(where, 'is a symbol');
    if (v instanceof DateCtor) {
      try { return dateToIso.call(v); } catch (e) { throw notJson(where, 'is not a valid Date'); }
    }
    if (depth > MAX_DEPTH) throw notJson(where, 'is nested deeper than ' + MAX_DEPTH + ' levels');
    if (stack.indexOf(v) >= 0) throw notJson(where, 'refers to itself (a cycle)');
    stack.push(v);
    var out;
    if (isArray(v)) {
      out = [];
      for (var i = 0; i < v.length; i++) { where.push(i); out.push(copy(v[i], where, depth + 1, stack)); where.pop(); }
    } else {
      var proto = getPrototypeOf(v);
      if (proto !== ObjectProto && proto !== null) throw notJson(where, 'is not a plain object');
      out = {};
      var ks = keys(v);
      for (var j = 0; j < ks.length; j++) {
        var x = v[ks[j]];
        // Left out, as JSON.stringify leaves out a property that is undefined.
        if (x === undefined) continue;
        where.push(ks[j]);
        out[ks[j]] = copy(x, where, depth + 1, stack);
        where.pop();
      }
    }
    stack.pop();
    return out;
  }

  function notJson (where, what) {
    var path = 'data';
    for (var i = 0; i < where.length; i++) path += typeof where[i] === 'number' ? '[' + where[i] + ']' : '.' + where[i];
    return new Failure(path + ' ' + what);
  }

  function messages (list, name) {
    if (list === undefined || list === null) return [];
    if (!isArray(list)) throw new Failure(name + ' must be an array of strings');
    var out = [];
    for (var i = 0; i < list.length; i++) out.push(typeof list[i] === 'string' ? list[i] : String(list[i]));
    return out;
  }

  function Failure (message) { this.message = message; }

  function checkedBytes (b) {
    if (b === undefined || b === null || typeof b.length !== 'number') throw new Failure('bytes must be an array of integers 0..255');
    var out = [];
    for (var i = 0; i < b.length; i++) {
      var x = b[i];
      if (typeof x !== 'number' || !isInteger(x) || x < 0 || x > 255) throw new Failure('bytes[' + i + '] is ' + String(x) + ', not an integer 0..255');
      out.push(x);
    }
    return out;
  }

  function data (d) {
    return copy(d, [], 0, []);
  }

  function answer (run) {
    take(); // nothing a failed call printed is taken for this call's
    var result;
    try {
      result = run();
    } catch (e) {
      if (!(e instanceof Failure)) throw e;
      return stringify({ ok: false, code: 'LB_ERR_CODEC_RESULT', message: e.message, logs: take() });
    }
    result.ok = true;
    result.logs = take();
    return stringify(result);
  }

  function object (r, fn) {
    if (r === null || typeof r !== 'object' || isArray(r)) throw new Failure(fn + ' must return an object, not ' + (r === null ? 'null' : isArray(r) ? 'an array' : typeof r));
    return r;
  }

  var ops = {
    decodeUplink: function (json) {
      return answer(function () {
        var i = parse(json);
        if (F.decodeUplink) {
          var r = object(F.decodeUplink({ bytes: i.bytes, fPort: i.fPort, recvTime: new DateCtor(i.recvTime), variables: i.variables || {} }), 'decodeUplink');
          var errors = messages(r.errors, 'errors');
          return { data: errors.length > 0 ? undefined : data(r.data), warnings: messages(r.warnings, 'warnings'), errors: errors };
        }
        if (F.Decoder) return { data: data(F.Decoder(i.bytes, i.fPort)), warnings: [], errors: [] };
        if (F.Decode) return { data: data(F.Decode(i.fPort, i.bytes, i.variables || {})), warnings: [], errors: [] };
        throw new Failure('the codec has no decodeUplink, Decoder or Decode function');
      });
    },
    encodeDownlink: function (json) {
      return answer(function () {
        var i = parse(json);
        if (F.encodeDownlink) {
          var r = object(F.encodeDownlink({ data: i.data, variables: i.variables || {} }), 'encodeDownlink');
          var errors = messages(r.errors, 'errors');
          if (errors.length > 0) return { warnings: messages(r.warnings, 'warnings'), errors: errors };
          // The request's port, when it names one, wins over the codec's (docs/codecs.md).
          var fPort = i.fPort === undefined ? r.fPort : i.fPort;
          if (fPort !== undefined && (!isInteger(fPort) || fPort < 0 || fPort > 255)) throw new Failure('fPort must be an integer 0..255, not ' + String(fPort));
          return { bytes: checkedBytes(r.bytes), fPort: fPort, warnings: messages(r.warnings, 'warnings'), errors: [] };
        }
        if (F.Encoder) return { bytes: checkedBytes(F.Encoder(i.data, i.fPort)), fPort: i.fPort, warnings: [], errors: [] };
        if (F.Encode) return { bytes: checkedBytes(F.Encode(i.fPort, i.data, i.variables || {})), fPort: i.fPort, warnings: [], errors: [] };
        throw new Failure('the codec has no encodeDownlink, Encoder or Encode function');
      });
    },
    decodeDownlink: function (json) {
      return answer(function () {
        var i = parse(json);
        if (!F.decodeDownlink) throw new Failure('the codec has no decodeDownlink function');
        var r = object(F.decodeDownlink({ bytes: i.bytes, fPort: i.fPort, variables: i.variables || {} }), 'decodeDownlink');
        var errors = messages(r.errors, 'errors');
        return { data: errors.length > 0 ? undefined : data(r.data), warnings: messages(r.warnings, 'warnings'), errors: errors };
      });
    },
    forms: function () {
      var f = [];
      if (F.decodeUplink || F.encodeDownlink || F.decodeDownlink) f.push('ts013');
      if (F.Decoder || F.Encoder) f.push('ttn-v2');
      if (F.Decode || F.Encode) f.push('chirpstack-v3');
      return stringify({ forms: f, decodeUplink: !!(F.decodeUplink || F.Decoder || F.Decode), encodeDownlink: !!(F.encodeDownlink || F.Encoder || F.Encode), decodeDownlink: !!F.decodeDownlink });
    }
  };

  // Instances may still take a name or a message of their own after the freeze (the "override
  // mistake": assigning a property a frozen prototype holds fails, in strict code with a TypeError).
  function tameOverride (proto, name) {
    var d = getOwn(proto, name);
    if (!d || !('value' in d)) return;
    var value = d.value;
    defineProperty(proto, name, {
      get: function () { return value; },
      set: function (v) {
        if (this === proto) throw new TypeError('cannot change the built-in ' + name);
        defineProperty(this, name, { value: v, writable: true, enumerable: true, configurable: true });
      },
      enumerable: d.enumerable, configurable: false
    });
  }
  var errorProtos = [Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError, AggregateError].map(function (c) { return c.prototype; });
  errorProtos.forEach(function (p) { tameOverride(p, 'name'); tameOverride(p, 'message'); tameOverride(p, 'constructor'); });
  ['toString', 'valueOf', 'constructor', 'toLocaleString'].forEach(function (n) { tameOverride(ObjectProto, n); });

  var hardened = new Set();
  function harden (o) {
    if (o === null || (typeof o !== 'object' && typeof o !== 'function') || hardened.has(o)) return;
    hardened.add(o);
    freeze(o);
    harden(getPrototypeOf(o));
    var ks = ownKeys(o);
    for (var i = 0; i < ks.length; i++) {
      var d = getOwn(o, ks[i]);
      if (d === undefined) continue;
      if ('value' in d) harden(d.value); else { harden(d.get); harden(d.set); }
    }
  }
  for (var s = 0; s < STANDARD.length; s++) {
    var name = STANDARD[s];
    if (name === 'globalThis' || name === 'console' || name === 'module' || name === 'exports') continue;
    var d = getOwn(g, name);
    if (d === undefined) continue;
    defineProperty(g, name, { writable: false, configurable: false });
    harden(d.value);
  }
  // Intrinsics no global names: generator, async and iterator prototypes.
  [function * () {}, async function () {}, async function * () {}, [][Symbol.iterator](), new Map().entries(), new Set().values(), ''[Symbol.iterator](), /a/[Symbol.matchAll]('')]
    .forEach(function (x) { harden(getPrototypeOf(x)); });
  harden(console);
  defineProperty(g, 'console', { writable: false, configurable: false });
  defineProperty(g, '__lb', { value: freeze(ops), writable: false, configurable: false, enumerable: false });
})(globalThis, ${JSON.stringify(standardGlobals)});
`
}
