#!/usr/bin/env node
// auth.js: the locks on a Mica cluster as a Node.js client written from
// proto/mica.proto alone sees them (docs/security.md).
//
// Against a cluster serving TLS, with a tokens file and client certificates
// requested (test_grpcjs starts one), it checks that:
//   - TLS credentials (the cluster CA) with an admin token create a table,
//     write and read it;
//   - a read token reads, and its Put and DropTable are refused
//     PERMISSION_DENIED naming the role and the table;
//   - no token is refused UNAUTHENTICATED; an unknown token too;
//   - a client certificate signed by the CA whose CN the tokens file maps
//     to a role (cert:CN) acts with that role, and nothing more;
//   - a channel trusting another CA, and a plaintext channel, fail
//     (UNAVAILABLE: no handshake);
//   - none of the refused calls changed anything; no message names a token.
//
// usage: node auth.js --master HOST:PORT --ca FILE --wrong-ca FILE
//                     --admin-token T --read-token T --cert FILE --key FILE
//                     [--table NAME] [--proto FILE] [--timeout-ms N]
// Prints "ok <check>" per check and "grpcjs auth: all <n> checks passed";
// on the first failure "FAIL <check>: <why>" on stderr and exit 1; a usage
// error exits 2.
'use strict';

const fs = require('fs');
const path = require('path');

let grpc, loader;
try {
  grpc = require('@grpc/grpc-js');
  loader = require('@grpc/proto-loader');
} catch (e) {
  process.stderr.write('auth.js: the npm modules are missing (' + e.message +
                       '); run tools/install-deps\n');
  process.exit(77);
}

function usage(msg) {
  process.stderr.write('auth.js: ' + msg + '\nusage: node auth.js --master HOST:PORT ' +
                       '--ca FILE --wrong-ca FILE --admin-token T --read-token T ' +
                       '--cert FILE --key FILE [--table NAME] [--proto FILE] ' +
                       '[--timeout-ms N]\n');
  process.exit(2);
}

const opts = {
  table: 'js_auth',
  proto: path.join(__dirname, '..', '..', 'proto', 'mica.proto'),
  timeoutMs: 20000,
};
{
  const flags = {
    '--master': 'master', '--ca': 'ca', '--wrong-ca': 'wrongCa',
    '--admin-token': 'adminToken', '--read-token': 'readToken',
    '--cert': 'cert', '--key': 'key', '--table': 'table', '--proto': 'proto',
  };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (i + 1 >= a.length) usage(`${a[i]} needs a value`);
    const v = a[++i];
    if (a[i - 1] === '--timeout-ms') {
      if (!/^[1-9][0-9]*$/.test(v)) usage(`--timeout-ms: '${v}' is not a positive integer`);
      opts.timeoutMs = Number(v);
    } else if (flags[a[i - 1]]) {
      opts[flags[a[i - 1]]] = v;
    } else {
      usage(`unknown argument '${a[i - 1]}'`);
    }
  }
  for (const f of ['master', 'ca', 'wrongCa', 'adminToken', 'readToken', 'cert', 'key'])
    if (!opts[f]) usage(`--${f.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required`);
}

const def = loader.loadSync(opts.proto, {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
});
const mica = grpc.loadPackageDefinition(def).mica.v1;
const read = (f) => fs.readFileSync(f);

// Credentials: TLS trusting `ca`, optionally with a client certificate,
// and a bearer token as call credentials ("authorization: Bearer <token>").
function creds({ ca, token, cert }) {
  const tls = cert
    ? grpc.credentials.createSsl(read(ca), read(opts.key), read(opts.cert))
    : grpc.credentials.createSsl(read(ca));
  if (!token) return tls;
  const bearer = grpc.credentials.createFromMetadataGenerator((_, cb) => {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    cb(null, md);
  });
  return grpc.credentials.combineChannelCredentials(tls, bearer);
}

class CheckFailed extends Error {}
let checks = 0;
function ok(what) {
  checks++;
  process.stdout.write(`ok ${what}\n`);
}
function check(cond, what) {
  if (!cond) throw new CheckFailed(what);
}
const B = (s) => Buffer.from(s, 'latin1');

function unary(client, method, req) {
  return new Promise((resolve, reject) => {
    client[method](req, { deadline: Date.now() + opts.timeoutMs },
                   (err, resp) => (err ? reject(err) : resolve(resp)));
  });
}
// A Mica Status in the response: absent is OK.
function micaCode(resp) {
  return resp.status ? resp.status.code : 'MICA_OK';
}
async function okCall(client, method, req, what) {
  let resp;
  try {
    resp = await unary(client, method, req);
  } catch (e) {
    throw new CheckFailed(`${what}: gRPC ${e.code} ${e.details}`);
  }
  check(micaCode(resp) === 'MICA_OK', `${what}: ${micaCode(resp)} ${resp.status && resp.status.message}`);
  return resp;
}
// The call must fail with gRPC status `code`, its details containing each
// of `parts` and no token.
async function refused(client, method, req, code, parts, what) {
  try {
    const resp = await unary(client, method, req);
    throw new CheckFailed(`${what}: succeeded (${micaCode(resp)}), expected gRPC ${code}`);
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    check(e.code === code, `${what}: gRPC ${e.code} "${e.details}", expected ${code}`);
    for (const p of parts)
      check(e.details.includes(p), `${what}: "${e.details}" lacks "${p}"`);
    check(!e.details.includes(opts.adminToken) && !e.details.includes(opts.readToken),
          `${what}: the message names a token`);
  }
}

function clients(c) {
  return {
    master: new mica.Master(opts.master, c),
    ts: (addr) => new mica.TabletServer(addr, c),
  };
}

async function main() {
  const S = grpc.status;
  const admin = clients(creds({ ca: opts.ca, token: opts.adminToken }));
  const reader = clients(creds({ ca: opts.ca, token: opts.readToken }));
  const anon = clients(creds({ ca: opts.ca }));
  const stranger = clients(creds({ ca: opts.ca, token: 'not-a-token-of-this-cluster-0123' }));
  const byCert = clients(creds({ ca: opts.ca, cert: true }));
  const table = opts.table;

  // TLS and an admin token: create, write, read.
  await okCall(admin.master, 'CreateTable', { name: table, split_keys: [] }, 'admin CreateTable');
  let route;
  for (const until = Date.now() + opts.timeoutMs; ;) {
    const lr = await okCall(admin.master, 'LookupTablets', { table, key: B('k'), count: 1 }, 'LookupTablets');
    route = lr.tablets[0];
    if (route && route.location) break;
    check(Date.now() < until, 'the new table\'s tablet got no location');
    await new Promise((r) => setTimeout(r, 50));
  }
  const ref = {
    tablet_id: route.desc.tablet_id, range_epoch: route.desc.range_epoch,
    assign_epoch: route.location.assign_epoch,
  };
  const addr = route.location.address;
  await okCall(admin.ts(addr), 'Put', { tablet: ref, key: B('k'), value: B('v1') }, 'admin Put');
  const g = await okCall(admin.ts(addr), 'Get', { tablet: ref, key: B('k') }, 'admin Get');
  check(g.found && g.value.toString() === 'v1', 'admin reads its write');
  ok('TLS with an admin token creates, writes and reads');

  // A read token reads; its writes and drops are refused.
  const rg = await okCall(reader.ts(addr), 'Get', { tablet: ref, key: B('k') }, 'read token Get');
  check(rg.found && rg.value.toString() === 'v1', 'read token reads');
  await refused(reader.ts(addr), 'Put', { tablet: ref, key: B('k'), value: B('bad') },
                S.PERMISSION_DENIED, ["needs role 'write'", `on table '${table}'`, "identity 'carol'"],
                'read token Put');
  await refused(reader.master, 'DropTable', { name: table }, S.PERMISSION_DENIED,
                ["needs role 'admin'", `on table '${table}'`], 'read token DropTable');
  ok('a read token reads; its Put and DropTable are PERMISSION_DENIED naming role and table');

  // No token, an unknown token.
  await refused(anon.master, 'ListTables', {}, S.UNAUTHENTICATED, ['no token given'], 'no token ListTables');
  await refused(anon.ts(addr), 'Put', { tablet: ref, key: B('k'), value: B('bad') },
                S.UNAUTHENTICATED, ["needs role 'write'"], 'no token Put');
  await refused(stranger.master, 'DropTable', { name: table }, S.UNAUTHENTICATED,
                ['not recognised'], 'unknown token DropTable');
  ok('no token and an unknown token are UNAUTHENTICATED');

  // A client certificate mapped to a role (cert:CN, read on this table).
  const cg = await okCall(byCert.ts(addr), 'Get', { tablet: ref, key: B('k') }, 'certificate Get');
  check(cg.found && cg.value.toString() === 'v1', 'certificate identity reads');
  await refused(byCert.ts(addr), 'Put', { tablet: ref, key: B('k'), value: B('bad') },
                S.PERMISSION_DENIED, ["needs role 'write'", "identity 'jsreport'"], 'certificate Put');
  const lt = await okCall(byCert.master, 'ListTables', {}, 'certificate ListTables');
  check(lt.tables.length === 1 && lt.tables[0].name === table,
        `certificate ListTables shows only '${table}' (got ${lt.tables.map((t) => t.name)})`);
  ok('a client certificate acts with the role the tokens file maps its CN to');

  // Another CA, plaintext: no handshake.
  const wrong = clients(creds({ ca: opts.wrongCa, token: opts.adminToken }));
  await refused(wrong.master, 'DropTable', { name: table }, S.UNAVAILABLE, [], 'wrong CA DropTable');
  const plain = new mica.Master(opts.master, grpc.credentials.createInsecure());
  await refused(plain, 'DropTable', { name: table }, S.UNAVAILABLE, [], 'plaintext DropTable');
  ok('a channel trusting another CA and a plaintext channel are refused');

  // Nothing changed.
  const after = await okCall(admin.ts(addr), 'Get', { tablet: ref, key: B('k') }, 'admin Get after');
  check(after.found && after.value.toString() === 'v1', 'the value is unchanged');
  const tables = await okCall(admin.master, 'ListTables', {}, 'admin ListTables');
  check(tables.tables.some((t) => t.name === table), 'the table still exists');
  await okCall(admin.master, 'DropTable', { name: table }, 'admin DropTable');
  ok('refused calls changed nothing; the admin drops the table');
}

main().then(() => {
  process.stdout.write(`grpcjs auth: all ${checks} checks passed\n`);
  process.exit(0);
}, (e) => {
  const why = e instanceof CheckFailed ? e.message
    : (e && e.code !== undefined ? `gRPC ${e.code} ${e.details || e.message}` : (e && e.stack) || String(e));
  process.stderr.write(`FAIL after ${checks} checks: ${why}\n`);
  process.exit(1);
});
