#!/usr/bin/env node
// client.js: a Mica client written in Node.js from proto/mica.proto alone.
//
// It loads the .proto at run time (no generated code) and drives a real
// cluster through the happy path, an operator split, a move and a merge,
// following the routing answers the tablet servers give a client whose
// cached routes went stale. Everything it relies on is what the comments of
// proto/mica.proto say; each check names the comment it holds the servers
// to. That is its point: it proves the comments are enough to write a client
// in another language (issue 12, section 4).
//
// usage: node client.js --master HOST:PORT [--table NAME] [--proto FILE]
//                       [--timeout-ms N]
// Prints one "ok <check>" line per check on stdout and, when all passed,
// "grpcjs client: all <n> checks passed". On the first failed check it prints
// "FAIL <check>: <why>" on stderr and exits 1; a usage error exits 2.
'use strict';

const path = require('path');

let grpc, loader;
try {
  grpc = require('@grpc/grpc-js');
  loader = require('@grpc/proto-loader');
} catch (e) {
  process.stderr.write('client.js: the npm modules are missing (' + e.message +
                       '); run tools/install-deps\n');
  process.exit(77);
}

// ---- arguments ----

function usage(msg) {
  process.stderr.write('client.js: ' + msg + '\nusage: node client.js --master ' +
                       'HOST:PORT [--table NAME] [--proto FILE] [--timeout-ms N]\n');
  process.exit(2);
}

const opts = {
  master: null,
  table: 'grpcjs',
  proto: path.join(__dirname, '..', '..', 'proto', 'mica.proto'),
  timeoutMs: 30000,
};
{
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const need = () => {
      if (i + 1 >= a.length) usage(`${a[i]} needs a value`);
      return a[++i];
    };
    switch (a[i]) {
      case '--master': opts.master = need(); break;
      case '--table': opts.table = need(); break;
      case '--proto': opts.proto = need(); break;
      case '--timeout-ms': {
        const v = need();
        if (!/^[1-9][0-9]*$/.test(v)) usage(`--timeout-ms: '${v}' is not a positive integer`);
        opts.timeoutMs = Number(v);
        break;
      }
      default: usage(`unknown argument '${a[i]}'`);
    }
  }
  if (!opts.master) usage('--master is required');
}

// ---- the proto ----

const def = loader.loadSync(opts.proto, {
  keepCase: true,  // field names as in the .proto
  longs: String,   // uint64 ids and epochs as decimal strings
  enums: String,   // enum values by name
  defaults: true,  // absent scalars as their defaults, absent messages null
  oneofs: true,
});
const mica = grpc.loadPackageDefinition(def).mica.v1;

// "Servers accept gRPC messages up to 64 MiB; clients must too."
const chanOpts = {
  'grpc.max_receive_message_length': 64 << 20,
  'grpc.max_send_message_length': 64 << 20,
};
const creds = grpc.credentials.createInsecure();
const master = new mica.Master(opts.master, creds, chanOpts);
const tservers = new Map();  // address -> TabletServer client
function ts(address) {
  let c = tservers.get(address);
  if (!c) {
    c = new mica.TabletServer(address, creds, chanOpts);
    tservers.set(address, c);
  }
  return c;
}

// ---- checks and calls ----

class CheckFailed extends Error {}
let checks = 0;
function ok(what) {
  checks++;
  process.stdout.write(`ok ${what}\n`);
}
function check(cond, what) {
  if (!cond) throw new CheckFailed(what);
}
function eq(got, want, what) {
  const g = Buffer.isBuffer(got) ? hex(got) : String(got);
  const w = Buffer.isBuffer(want) ? hex(want) : String(want);
  if (g !== w) throw new CheckFailed(`${what}: got ${g}, want ${w}`);
}
function hex(b) {
  return /^[\x20-\x7e]*$/.test(b.toString('latin1')) ? JSON.stringify(b.toString('latin1'))
                                                     : '0x' + b.toString('hex');
}
const B = (s) => Buffer.from(s, 'latin1');
const big = (x) => BigInt(x);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function deadline(ms) { return { deadline: Date.now() + (ms || opts.timeoutMs) }; }

// A unary call. Rejects on a non-OK gRPC status (the request never reached a
// handler, or the transport failed); resolves with the response otherwise.
function unary(client, method, req, ms) {
  return new Promise((resolve, reject) => {
    client[method](req, deadline(ms), (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}

// "Every response carries a Status (field 1)": absent means OK (proto3
// leaves a default message out). "Readers must treat a number they do not
// know as MICA_INTERNAL."
function codeOf(st) {
  if (st === null || st === undefined) return 'MICA_OK';
  if (typeof st.code === 'number') return 'MICA_INTERNAL';
  return st.code;
}
function statusText(st) {
  return st ? `${codeOf(st)}: ${st.message}` : 'MICA_OK';
}
async function masterCall(method, req, ms) {
  const resp = await unary(master, method, req, ms);
  if (codeOf(resp.status) !== 'MICA_OK')
    throw new CheckFailed(`${method}: ${statusText(resp.status)}`);
  return resp;
}

// ---- the routing cache ----
//
// Per table, routes in key order, each {desc, location}. "A client installs
// every route in `current` in its cache, not only the one covering its key,
// and retries without asking the master."

const cache = new Map();  // table name -> [TabletRoute]
let lookups = 0;          // LookupTablets calls, to prove routing answers suffice

function covers(desc, key) {
  return Buffer.compare(desc.start_key, key) <= 0 &&
         (desc.end_key.length === 0 || Buffer.compare(key, desc.end_key) < 0);
}
function overlaps(a, b) {
  const aEndsBefore = a.end_key.length > 0 && Buffer.compare(a.end_key, b.start_key) <= 0;
  const bEndsBefore = b.end_key.length > 0 && Buffer.compare(b.end_key, a.start_key) <= 0;
  return !aEndsBefore && !bEndsBefore;
}
function install(route) {
  const table = route.desc.table_name;
  const list = (cache.get(table) || []).filter((r) => !overlaps(r.desc, route.desc));
  if (route.location) list.push(route);
  list.sort((x, y) => Buffer.compare(x.desc.start_key, y.desc.start_key));
  cache.set(table, list);
}
function forget(table, tabletId) {
  cache.set(table, (cache.get(table) || []).filter((r) => r.desc.tablet_id !== tabletId));
}
function cached(table, key) {
  return (cache.get(table) || []).find((r) => covers(r.desc, key));
}

// LookupTablets until the tablet holding `key` has a location: "A tablet in
// transition has no location; the client retries after a short backoff."
async function lookup(table, key, before) {
  let wait = 20;
  const until = Date.now() + opts.timeoutMs;
  for (;;) {
    lookups++;
    const resp = await masterCall('LookupTablets', { table, key, count: 16, before: !!before });
    check(resp.tablets.length > 0, `LookupTablets('${table}') returned no tablet`);
    for (const r of resp.tablets) if (r.location) install(r);
    const first = resp.tablets[0];
    if (first.location) return first;
    if (Date.now() > until)
      throw new CheckFailed(`tablet ${first.desc.tablet_id} of '${table}' got no location`);
    await sleep(wait);
    wait = Math.min(wait * 2, 500);
  }
}
async function route(table, key) {
  return cached(table, key) || lookup(table, key, false);
}
function refOf(r) {
  return {
    tablet_id: r.desc.tablet_id,
    range_epoch: r.desc.range_epoch,
    assign_epoch: r.location.assign_epoch,
  };
}

// The routing answer of the last routed call, for the checks below.
let lastRouting = null;

// Installs what a routing error carries; returns true when it told where to
// go (so no master lookup is needed).
function follow(table, stale, st) {
  lastRouting = { code: codeOf(st), routing: st.routing, stale };
  forget(table, stale.desc.tablet_id);
  const re = st.routing;
  if (!re) return false;
  let told = false;
  for (const r of re.current) {
    // A server behind the client (its epochs older than the request's)
    // offers what it serves: keep only routes fresher than the failed one.
    const older = r.desc.tablet_id === stale.desc.tablet_id &&
      (big(r.desc.range_epoch) < big(stale.desc.range_epoch) ||
       (r.location && big(r.location.assign_epoch) < big(stale.location.assign_epoch)));
    if (r.location && !older) { install(r); told = true; }
  }
  if (re.moved_to) {
    install({ desc: stale.desc, location: re.moved_to });
    told = true;
  }
  return told;
}
const ROUTING = new Set(['MICA_NOT_SERVING', 'MICA_STALE_EPOCH', 'MICA_OUT_OF_RANGE']);

// A data call on the tablet holding `key`, following routing errors.
// build(ref) makes the request; returns the OK response.
async function routed(table, key, method, build) {
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = await route(table, key);
    const resp = await unary(ts(r.location.address), method, build(refOf(r)));
    const code = codeOf(resp.status);
    if (code === 'MICA_OK') return resp;
    if (!ROUTING.has(code)) throw new CheckFailed(`${method}: ${statusText(resp.status)}`);
    if (!follow(table, r, resp.status)) await sleep(50);
  }
  throw new CheckFailed(`${method} of ${hex(key)}: still misrouted after 20 attempts`);
}

const put = (t, k, v) => routed(t, k, 'Put', (tablet) => ({ tablet, key: k, value: v }));
const del = (t, k) => routed(t, k, 'Delete', (tablet) => ({ tablet, key: k }));
const get = (t, k) => routed(t, k, 'Get', (tablet) => ({ tablet, key: k }));

// Groups keys by tablet, one MultiGet per server; returns [{found, value}]
// in key order of `keys`.
async function multiGet(table, keys) {
  const out = new Array(keys.length);
  let pending = keys.map((k, i) => i);
  for (let round = 0; pending.length > 0; round++) {
    check(round < 20, 'MultiGet: still misrouted after 20 rounds');
    const byServer = new Map();
    for (const i of pending) {
      const r = await route(table, keys[i]);
      const s = byServer.get(r.location.address) || new Map();
      const part = s.get(r.desc.tablet_id) || { r, idx: [] };
      part.idx.push(i);
      s.set(r.desc.tablet_id, part);
      byServer.set(r.location.address, s);
    }
    const next = [];
    for (const [address, parts] of byServer) {
      const list = [...parts.values()];
      const resp = await unary(ts(address), 'MultiGet', {
        parts: list.map((p) => ({ tablet: refOf(p.r), keys: p.idx.map((i) => keys[i]) })),
      });
      check(codeOf(resp.status) === 'MICA_OK', `MultiGet: ${statusText(resp.status)}`);
      eq(resp.parts.length, list.length, 'MultiGet: one part result per request part');
      list.forEach((p, j) => {
        const pr = resp.parts[j];
        const code = codeOf(pr.status);
        if (code === 'MICA_OK') {
          eq(pr.results.length, p.idx.length, 'MultiGet: one result per key of a part');
          p.idx.forEach((i, t) => { out[i] = pr.results[t]; });
        } else if (ROUTING.has(code)) {
          follow(table, p.r, pr.status);
          next.push(...p.idx);
        } else {
          throw new CheckFailed(`MultiGet part ${j}: ${statusText(pr.status)}`);
        }
      });
    }
    pending = next;
  }
  return out;
}

// One Scan stream. Resolves with {rows, last} where `last` is the final
// chunk; rejects on a gRPC error. The stream always has a deadline.
function scanStream(address, req, onChunk) {
  return new Promise((resolve, reject) => {
    const call = ts(address).Scan(req, deadline());
    const rows = [];
    let last = null;
    call.on('data', (chunk) => {
      if (last) { reject(new CheckFailed('Scan: a chunk after the last one')); return; }
      rows.push(...chunk.rows);
      if (chunk.last) last = chunk;
      if (onChunk) onChunk(chunk, call);
    });
    call.on('error', reject);
    call.on('end', () => {
      if (!last) reject(new CheckFailed('Scan: the stream ended without a last chunk'));
      else resolve({ rows, last });
    });
  });
}

// A whole-table scan over [start, end) (empty = open), forward or reverse,
// crossing tablets as SCAN_END_RANGE says and resuming after routing errors
// as the ScanRequest comment says. Returns the rows and how many tablets it
// visited.
async function scan(table, start, end, { reverse = false, prefix = B(''), chunkRows = 0 } = {}) {
  const rows = [];
  let visited = 0;
  let lo = start, hi = end;
  for (let guard = 0; guard < 1000; guard++) {
    // Forward: the tablet holding lo; reverse: the one holding the largest
    // keys below hi ("before" mode).
    let r;
    if (!reverse) {
      r = await route(table, lo);
    } else {
      r = (hi.length > 0 ? (cache.get(table) || []).find((x) =>
        Buffer.compare(x.desc.start_key, hi) < 0 &&
        (x.desc.end_key.length === 0 || Buffer.compare(hi, x.desc.end_key) <= 0)) : null) ||
        (hi.length === 0 ? (cache.get(table) || []).find((x) => x.desc.end_key.length === 0) : null) ||
        await lookup(table, hi, true);
    }
    const { rows: got, last } = await scanStream(r.location.address, {
      tablet: refOf(r), start_key: lo, end_key: hi, prefix, reverse,
      chunk_max_rows: chunkRows,
    });
    rows.push(...got);
    const code = codeOf(last.status);
    if (code !== 'MICA_OK') {
      check(last.end === 'SCAN_END_ERROR', `Scan: status ${code} on a chunk whose end is ${last.end}`);
      if (!ROUTING.has(code)) throw new CheckFailed(`Scan: ${statusText(last.status)}`);
      if (got.length > 0) {
        const k = got[got.length - 1].key;
        if (!reverse) lo = Buffer.concat([k, Buffer.from([0])]); else hi = k;
      }
      if (!follow(table, r, last.status)) await sleep(50);
      continue;
    }
    visited++;
    if (last.end === 'SCAN_END_LIMIT') break;
    eq(last.end, 'SCAN_END_RANGE', 'Scan: the end of a stream without limit');
    check(last.tablet, 'Scan: the last chunk carries the tablet as served');
    const d = last.tablet;
    if (!reverse) {
      if (d.end_key.length === 0 || (hi.length > 0 && Buffer.compare(d.end_key, hi) >= 0)) break;
      lo = d.end_key;
    } else {
      if (d.start_key.length === 0 || (lo.length > 0 && Buffer.compare(d.start_key, lo) <= 0)) break;
      hi = d.start_key;
    }
  }
  return { rows, visited };
}

// The exclusive end of the keys beginning with `prefix`, as mica.proto's
// ScanRequest.prefix comment defines it: drop trailing 0xff bytes, add one
// to the last byte left; null (no end) when nothing is left.
function prefixSuccessor(prefix) {
  let n = prefix.length;
  while (n > 0 && prefix[n - 1] === 0xff) n--;
  if (n === 0) return null;
  const s = Buffer.from(prefix.subarray(0, n));
  s[n - 1] += 1;
  return s;
}

// A request sent with a given (stale) route, without the cache: returns the
// response so its routing answer can be checked.
async function getWith(r, key) {
  return unary(ts(r.location.address), 'Get', { tablet: refOf(r), key });
}

// Checks a routing answer's fields against the RoutingError comments.
function checkRouting(st, wantCode, requested, key, what) {
  eq(codeOf(st), wantCode, `${what}: code`);
  check(st.message.length > 0, `${what}: a non-OK Status names what was wrong`);
  const re = st.routing;
  check(re, `${what}: Status.routing is present`);
  eq(re.requested_tablet_id, requested, `${what}: RoutingError.requested_tablet_id echoes the request`);
  for (let i = 1; i < re.current.length; i++)
    check(Buffer.compare(re.current[i - 1].desc.start_key, re.current[i].desc.start_key) < 0,
          `${what}: RoutingError.current is in key order`);
  return re;
}

// ---- the run ----

function sortedKeys(kvs) { return kvs.map((kv) => hex(kv.key)); }

async function main() {
  const table = opts.table;
  const T = (s) => B(s);

  // The master answers.
  const info = await masterCall('GetInfo', {}, 5000);
  check(info.version.length > 0, 'GetInfo: the master names its version');

  // The operator's switches: no automatic balancing or merging while this
  // run moves tablets itself, so every routing answer below is the one its
  // own split, move or merge caused.
  const cf = await masterCall('Configure', { balancer_enabled: false, merge_enabled: false });
  check(!cf.balancer_enabled && !cf.merge_enabled, 'Configure: the settings now in force');

  // Echo is served by tablet servers only.
  try {
    await unary(new mica.Echo(opts.master, creds, chanOpts), 'Echo', { payload: B('x') }, 5000);
    throw new CheckFailed('Echo: the master answered it');
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    eq(e.code, grpc.status.UNIMPLEMENTED, 'Echo at the master: gRPC status');
  }

  // CreateTable with split keys: tablets in key order, no location yet.
  const splits = ['g', 'p'].map(T);
  const cr = await masterCall('CreateTable', { name: table, split_keys: splits });
  eq(cr.table.name, table, 'CreateTable: TableInfo.name');
  eq(cr.tablets.length, 3, 'CreateTable: len(split_keys)+1 tablets');
  const bounds = [B(''), ...splits, B('')];
  cr.tablets.forEach((r, i) => {
    eq(r.desc.start_key, bounds[i], `CreateTable: tablets[${i}].start_key`);
    eq(r.desc.end_key, bounds[i + 1], `CreateTable: tablets[${i}].end_key`);
    eq(r.desc.table_id, cr.table.table_id, `CreateTable: tablets[${i}].table_id`);
    check(r.location === null, `CreateTable: tablets[${i}] has no location yet`);
  });
  const again = await unary(master, 'CreateTable', { name: table });
  eq(codeOf(again.status), 'MICA_ALREADY_EXISTS', 'CreateTable of a taken name');
  ok('create table with split keys');

  // Wait until every tablet has a location.
  {
    let wait = 20;
    const until = Date.now() + opts.timeoutMs;
    for (;;) {
      lookups++;
      const lr = await masterCall('LookupTablets', { table, key: B(''), count: 1000 });
      if (lr.tablets.length === 3 && lr.tablets.every((r) => r.location)) {
        lr.tablets.forEach(install);
        break;
      }
      check(Date.now() < until, 'tablets got locations within the deadline');
      await sleep(wait);
      wait = Math.min(wait * 2, 500);
    }
  }
  ok('tablets placed');

  // Echo at a tablet server.
  {
    const addr = cached(table, T('a')).location.address;
    const echo = new mica.Echo(addr, creds, chanOpts);
    const resp = await unary(echo, 'Echo', { payload: B('ping') }, 5000);
    eq(resp.payload, T('ping'), 'Echo at a tablet server');
  }
  ok('echo');

  // Put and Get, across the three tablets; binary keys for the prefix checks.
  const data = new Map();
  const keys = ['apple', 'banana', 'cherry', 'grape', 'kiwi', 'lemon', 'mango', 'peach',
                'pear', 'plum', 'quince', 'zucchini', 'p\xff\x01', 'p\xff\xff', 'q',
                '\xff\xff\x00', '\xff\xff'];
  for (const k of keys) {
    const v = B(`value of ${k}`);
    const pr = await put(table, T(k), v);
    check(big(pr.sequence) > 0n, `Put ${k}: PutResponse.sequence is set`);
    data.set(k, v);
  }
  for (const k of keys) {
    const g = await get(table, T(k));
    check(g.found, `Get ${hex(T(k))}: found`);
    eq(g.value, data.get(k), `Get ${hex(T(k))}: value`);
  }
  const miss = await get(table, T('nothing'));
  check(!miss.found && miss.value.length === 0, 'Get of a missing key: found=false, OK');
  ok('put and get');

  // MultiGet: order kept, duplicates and misses, parts on several servers.
  {
    const ks = ['zucchini', 'apple', 'missing', 'apple', 'lemon'].map(T);
    const res = await multiGet(table, ks);
    ks.forEach((k, i) => {
      const want = data.get(k.toString('latin1'));
      eq(res[i].found, want !== undefined, `MultiGet ${hex(k)}: found`);
      if (want) eq(res[i].value, want, `MultiGet ${hex(k)}: value`);
    });
  }
  // The rule for a bad key: it fails its own part only.
  {
    const r = cached(table, T('a'));
    const resp = await unary(ts(r.location.address), 'MultiGet', {
      parts: [{ tablet: refOf(r), keys: [T('apple')] },
              { tablet: refOf(r), keys: [T('banana'), B('')] },
              { tablet: refOf(r), keys: [T('kiwi')] }],
    });
    eq(codeOf(resp.status), 'MICA_OK', 'MultiGet with a bad key in one part: request status');
    eq(resp.parts.length, 3, 'MultiGet: one result per part');
    eq(codeOf(resp.parts[0].status), 'MICA_OK', 'MultiGet: the good part');
    eq(resp.parts[0].results[0].value, data.get('apple'), 'MultiGet: the good part\'s value');
    eq(codeOf(resp.parts[1].status), 'MICA_INVALID_ARGUMENT', 'MultiGet: the part with an empty key');
    check(resp.parts[1].status.message.includes('parts[1].keys[1]'),
          `MultiGet: the message names the key (${resp.parts[1].status.message})`);
    eq(resp.parts[1].results.length, 0, 'MultiGet: a failed part has no results');
    // kiwi is in ["g", "p"): out of this part's range, a routing error for
    // this part only.
    const re = checkRouting(resp.parts[2].status, 'MICA_OUT_OF_RANGE', r.desc.tablet_id,
                            T('kiwi'), 'MultiGet part out of range');
    eq(re.current.length, 1, 'OUT_OF_RANGE: current = this tablet as served');
    eq(re.current[0].desc.tablet_id, r.desc.tablet_id, 'OUT_OF_RANGE: current tablet id');
    eq(re.current[0].desc.end_key, T('g'), 'OUT_OF_RANGE: current end_key');
  }
  ok('multiget');

  // Batch: atomic, in order, later mutation of a key wins.
  {
    const r = cached(table, T('q'));
    const muts = [
      { kind: 'KIND_PUT', key: T('raspberry'), value: T('1') },
      { kind: 'KIND_PUT', key: T('raspberry'), value: T('2') },
      { kind: 'KIND_PUT', key: T('strawberry'), value: T('3') },
      { kind: 'KIND_DELETE', key: T('quince') },
    ];
    const br = await routed(table, T('q'), 'Batch', (tablet) => ({ tablet, mutations: muts }));
    check(big(br.sequence) > 0n, 'Batch: sequence is set');
    data.set('raspberry', T('2'));
    data.set('strawberry', T('3'));
    data.delete('quince');
    const bad = await unary(ts(r.location.address), 'Batch', {
      tablet: refOf(r),
      mutations: [{ kind: 'KIND_PUT', key: T('tomato'), value: T('x') },
                  { kind: 'KIND_UNSPECIFIED', key: T('turnip') }],
    });
    eq(codeOf(bad.status), 'MICA_INVALID_ARGUMENT', 'Batch with KIND_UNSPECIFIED');
    const g1 = await get(table, T('raspberry'));
    eq(g1.value, T('2'), 'Batch: the later mutation of a key wins');
    check(!(await get(table, T('quince'))).found, 'Batch: the delete applied');
    check(!(await get(table, T('tomato'))).found, 'Batch: a rejected batch applies nothing');
  }
  ok('batch');

  const expectAll = () => [...data.keys()].map(B).sort(Buffer.compare).map(hex);

  // Scans: the whole table forward in small chunks and in reverse.
  {
    const { rows, visited } = await scan(table, B(''), B(''), { chunkRows: 2 });
    eq(JSON.stringify(sortedKeys(rows)), JSON.stringify(expectAll()), 'full forward scan');
    eq(visited, 3, 'full scan visits every tablet');
    rows.forEach((kv) => eq(kv.value, data.get(kv.key.toString('latin1')), 'scan value'));
    const rev = await scan(table, B(''), B(''), { reverse: true, chunkRows: 3 });
    eq(JSON.stringify(sortedKeys(rev.rows)), JSON.stringify(expectAll().reverse()), 'full reverse scan');
  }
  // Prefix scans narrowed to [prefix, successor).
  for (const [p, succ] of [['pe', 'pf'], ['p\xff', 'q'], ['\xff\xff', null]]) {
    const prefix = B(p);
    const s = prefixSuccessor(prefix);
    eq(s === null ? 'none' : s, succ === null ? 'none' : B(succ), `successor of ${hex(prefix)}`);
    const { rows, visited } = await scan(table, prefix, s || B(''), { prefix });
    const want = expectAll().filter((k) => [...data.keys()].some(
      (d) => hex(B(d)) === k && d.startsWith(p)));
    eq(JSON.stringify(sortedKeys(rows)), JSON.stringify(want), `prefix scan of ${hex(prefix)}`);
    eq(visited, 1, `prefix scan of ${hex(prefix)} visits one tablet`);
  }
  // A scan client reads or cancels: cancel after the first chunk.
  {
    const r = cached(table, T('a'));
    let cancelled = false;
    const res = await scanStream(r.location.address, { tablet: refOf(r), chunk_max_rows: 1 },
      (chunk, call) => { if (!cancelled) { cancelled = true; call.cancel(); } })
      .then(() => null, (e) => e);
    check(res && res.code === grpc.status.CANCELLED, 'a cancelled scan ends with CANCELLED');
  }
  ok('scan');

  // Delete.
  await del(table, T('banana'));
  data.delete('banana');
  check(!(await get(table, T('banana'))).found, 'Delete: the key is gone');
  await del(table, T('never-written'));
  ok('delete');

  // ---- split: an operator splits ["g", "p") at "k" ----
  const parent = cached(table, T('lemon'));
  let left, right;
  {
    const sr = await masterCall('SplitTablet', { tablet_id: parent.desc.tablet_id, split_key: T('k') });
    left = sr.left; right = sr.right;
    eq(left.desc.start_key, T('g'), 'split: left daughter start');
    eq(left.desc.end_key, T('k'), 'split: left daughter end');
    eq(right.desc.start_key, T('k'), 'split: right daughter start');
    eq(right.desc.end_key, T('p'), 'split: right daughter end');
    for (const d of [left, right]) {
      check(d.desc.tablet_id !== parent.desc.tablet_id, 'split: daughters get new ids');
      check(big(d.desc.range_epoch) > big(parent.desc.range_epoch), 'split: daughters\' range_epoch grows');
    }
    // The client still holds the parent's route: the server answers
    // STALE_EPOCH with both daughters.
    const resp = await getWith(parent, T('lemon'));
    const re = checkRouting(resp.status, 'MICA_STALE_EPOCH', parent.desc.tablet_id, T('lemon'),
                            'stale route after a split');
    eq(re.current.length, 2, 'split: current = both daughters');
    eq(re.current[0].desc.tablet_id, left.desc.tablet_id, 'split: current[0] is the left daughter');
    eq(re.current[1].desc.tablet_id, right.desc.tablet_id, 'split: current[1] is the right daughter');
    for (const c of re.current) {
      check(c.location, 'split: daughters carry this server\'s location');
      eq(c.location.address, parent.location.address, 'split: daughters serve on the same server');
    }
    check(re.moved_to === null, 'split: moved_to absent');
    // Following it through the cache asks the master nothing.
    const before = lookups;
    for (const k of ['grape', 'kiwi', 'lemon', 'mango']) {
      const g = await get(table, T(k));
      eq(g.value, data.get(k), `after the split, Get ${k}`);
    }
    eq(lookups, before, 'after the split: no LookupTablets needed');
    eq(lastRouting.code, 'MICA_STALE_EPOCH', 'after the split: the cache followed a STALE_EPOCH');
    eq(cached(table, T('grape')).desc.tablet_id, left.desc.tablet_id, 'cache holds the left daughter');
    eq(cached(table, T('lemon')).desc.tablet_id, right.desc.tablet_id, 'cache holds the right daughter');
  }
  ok('split: stale route answered with both daughters, followed without the master');

  // ---- move: ["", "g") to another server ----
  {
    const old = cached(table, T('apple'));
    const ls = await masterCall('ListServers', {});
    const target = ls.servers.find((s) => s.state === 'SERVER_LIVE' && s.server_id !== old.location.server_id);
    check(target, 'move: another live server exists');
    const mr = await masterCall('MoveTablet', { tablet_id: old.desc.tablet_id, target_server_id: target.server_id });
    eq(mr.tablet.location.server_id, target.server_id, 'move: the new location\'s server');
    eq(mr.tablet.location.address, target.address, 'move: the new location\'s address');
    check(big(mr.tablet.location.assign_epoch) > big(old.location.assign_epoch), 'move: assign_epoch grows');
    eq(mr.tablet.desc.range_epoch, old.desc.range_epoch, 'move: range_epoch unchanged');
    const resp = await getWith(old, T('apple'));
    const re = checkRouting(resp.status, 'MICA_NOT_SERVING', old.desc.tablet_id, T('apple'),
                            'stale route after a move');
    check(re.moved_to, 'move: RoutingError.moved_to is set');
    eq(re.moved_to.server_id, target.server_id, 'move: moved_to.server_id');
    eq(re.moved_to.address, target.address, 'move: moved_to.address');
    eq(re.moved_to.assign_epoch, mr.tablet.location.assign_epoch, 'move: moved_to.assign_epoch');
    const before = lookups;
    for (const k of ['apple', 'cherry']) {
      const g = await get(table, T(k));
      eq(g.value, data.get(k), `after the move, Get ${k}`);
    }
    eq(lookups, before, 'after the move: no LookupTablets needed');
    eq(lastRouting.code, 'MICA_NOT_SERVING', 'after the move: the cache followed moved_to');
    eq(cached(table, T('apple')).location.address, target.address, 'cache holds the new server');
  }
  ok('move: stale route answered with moved_to, followed without the master');

  // ---- merge the two daughters back ----
  {
    const mr = await masterCall('MergeTablets', {
      left_tablet_id: left.desc.tablet_id, right_tablet_id: right.desc.tablet_id });
    const m = mr.merged;
    eq(m.desc.start_key, T('g'), 'merge: merged start');
    eq(m.desc.end_key, T('p'), 'merge: merged end');
    check(m.desc.tablet_id !== left.desc.tablet_id && m.desc.tablet_id !== right.desc.tablet_id,
          'merge: a new tablet id');
    check(big(m.desc.range_epoch) > big(left.desc.range_epoch) &&
          big(m.desc.range_epoch) > big(right.desc.range_epoch), 'merge: range_epoch grows');
    check(m.location, 'merge: the merged tablet serves');
    // A stale route to an input is answered STALE_EPOCH with the merged
    // tablet (the input was merged on that server, or the server learnt the
    // merged tablet from the master), or NOT_SERVING: with moved_to if the
    // input had been moved, else with nothing (the client asks the master).
    // Either way the client reaches the merged tablet by following what it
    // is told.
    const staleLeft = cached(table, T('grape'));
    eq(staleLeft.desc.tablet_id, left.desc.tablet_id, 'cache still holds the left input');
    const resp = await getWith(staleLeft, T('grape'));
    const code = codeOf(resp.status);
    // Merged on the server that served the input: "the named tablet was
    // split or merged here (current = its successors)".
    if (m.location.server_id === staleLeft.location.server_id)
      eq(code, 'MICA_STALE_EPOCH', 'merge: an input merged on its own server answers');
    if (code === 'MICA_STALE_EPOCH') {
      const re = checkRouting(resp.status, code, left.desc.tablet_id, T('grape'), 'stale route after a merge');
      const c = re.current.find((x) => covers(x.desc, T('grape')));
      check(c, 'merge: current covers the key');
      eq(c.desc.tablet_id, m.desc.tablet_id, 'merge: current is the merged tablet');
      process.stdout.write('merge: the input answered STALE_EPOCH with the merged tablet\n');
    } else {
      eq(code, 'MICA_NOT_SERVING', 'merge: a stale input answers STALE_EPOCH or NOT_SERVING');
      const re = resp.status.routing;
      if (re && re.moved_to) {
        checkRouting(resp.status, code, left.desc.tablet_id, T('grape'), 'stale route after a merge');
        check(big(re.moved_to.assign_epoch) > big(staleLeft.location.assign_epoch),
              'merge: moved_to carries a newer assign_epoch');
        process.stdout.write('merge: the input answered NOT_SERVING with moved_to\n');
      } else {
        process.stdout.write('merge: the input answered NOT_SERVING; the client asks the master\n');
      }
    }
    for (const k of ['grape', 'kiwi', 'lemon', 'mango', 'peach', 'pear', 'plum']) {
      const g = await get(table, T(k));
      eq(g.value, data.get(k), `after the merge, Get ${k}`);
    }
    eq(cached(table, T('kiwi')).desc.tablet_id, m.desc.tablet_id, 'cache holds the merged tablet');
    await put(table, T('kumquat'), T('merged write'));
    data.set('kumquat', T('merged write'));
  }
  ok('merge: stale input routed to the merged tablet');

  // Everything is still exact, by scan and by MultiGet.
  {
    const { rows } = await scan(table, B(''), B(''), { chunkRows: 4 });
    eq(JSON.stringify(sortedKeys(rows)), JSON.stringify(expectAll()), 'final scan');
    rows.forEach((kv) => eq(kv.value, data.get(kv.key.toString('latin1')), 'final scan value'));
    const ks = [...data.keys()].map(B);
    const res = await multiGet(table, ks);
    ks.forEach((k, i) => eq(res[i].value, data.get(k.toString('latin1')), `final MultiGet ${hex(k)}`));
  }
  ok('data exact after split, move and merge');

  await masterCall('DropTable', { name: table });
  ok('drop table');
}

main().then(() => {
  process.stdout.write(`grpcjs client: all ${checks} checks passed\n`);
  process.exit(0);
}, (e) => {
  const why = e instanceof CheckFailed ? e.message
    : (e && e.code !== undefined ? `gRPC ${e.code} ${e.details || e.message}` : (e && e.stack) || String(e));
  process.stderr.write(`FAIL after ${checks} checks: ${why}\n`);
  process.exit(1);
});
