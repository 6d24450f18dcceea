// s3_proxy: a fault-injecting, signature-checking HTTP proxy that the S3
// env's tests put between Mica and a real S3 server (s3rver).
//
//   node s3_proxy.js UPSTREAM_URL ACCESS_KEY SECRET_KEY REGION
//
// It listens on 127.0.0.1 on a free port and prints "PORT\n" once ready.
//
// Signatures: s3rver accepts any SigV4 signature, so this proxy checks
// every request the way AWS does, independently of curl: it rebuilds the
// canonical request from what arrived on the wire (method, the path
// exactly as sent, the query re-encoded and sorted, the signed headers,
// the x-amz-content-sha256 value), derives the signing key from the
// secret, and compares signatures. It also requires x-amz-content-sha256
// to be present, signed and equal to the SHA-256 of the body received,
// every x-amz-* header to be signed, and the credential scope to name the
// region and "s3". A failed check answers 403 SignatureDoesNotMatch (as
// AWS would) and is recorded.
//
// Control (requests whose path starts with /__proxy/, never forwarded):
//   POST /__proxy/fault?kind=K&count=N[&method=M][&match=S][&ms=D][&offset=O][&every=E][&skip=P]
//        the next N requests with method M (any if absent) whose URL
//        contains S, after the first P such requests (0 if absent), get
//        fault K (with every=E, only every E-th of those requests does, so
//        the others between them pass: a flaky server rather than a dead
//        one); the fault is chosen when the request's headers arrive:
//          500, 503       that status with an InternalError/ServiceUnavailable body
//          slowdown       503 SlowDown
//          412            412 PreconditionFailed, as a server with
//                         conditional writes answers If-None-Match: * on
//                         an existing key (s3rver never does)
//          reset          the connection is destroyed before any answer
//          delay          forwarded after D ms (for timeouts)
//          truncate       forwarded, but the body is cut in half and the
//                         connection closed (a short read)
//          corrupt        forwarded with the body byte at offset O flipped
//          reset_upload   the connection is destroyed once half of the
//                         request's body arrived (an upload cut short;
//                         at once for a request without a body)
//          lost_answer    forwarded, so it takes effect upstream, but the
//                         connection is destroyed instead of answering (a
//                         PUT or DELETE that happened although the client
//                         saw it fail)
//   POST /__proxy/clear   drops pending faults
//   GET  /__proxy/log     one line per request since the last reset:
//                         "METHOD URL host=H conn=PORT sig=ok|bad signed=H1;H2
//                          range=R inm=V fault=K [why=...]" (conn: the client's
//                          port, so reused connections show as repeats; inm:
//                          the If-None-Match header, "-" when absent)
//   POST /__proxy/reset   clears the log
'use strict';

const http = require('http');
const crypto = require('crypto');

const [upstream, accessKey, secretKey, region] = process.argv.slice(2);
if (!upstream || !accessKey || !secretKey || !region) {
  console.error('usage: s3_proxy.js UPSTREAM_URL ACCESS_KEY SECRET_KEY REGION');
  process.exit(2);
}
const up = new URL(upstream);
const agent = new http.Agent({ keepAlive: true });

let faults = [];
let log = [];

const sha256 = b => crypto.createHash('sha256').update(b).digest('hex');
const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();

// RFC 3986 encoding as SigV4 wants it: unreserved characters kept,
// everything else %XX upper-case.
function awsEncode(s) {
  return Buffer.from(s, 'utf8')
    .toString('binary')
    .split('')
    .map(ch => {
      const c = ch.charCodeAt(0);
      if (/[A-Za-z0-9\-_.~]/.test(ch)) return ch;
      return '%' + c.toString(16).toUpperCase().padStart(2, '0');
    })
    .join('');
}

function canonicalQuery(q) {
  if (!q) return '';
  return q
    .split('&')
    .filter(p => p.length > 0)
    .map(p => {
      const i = p.indexOf('=');
      const k = i < 0 ? p : p.slice(0, i);
      const v = i < 0 ? '' : p.slice(i + 1);
      return [awsEncode(decodeURIComponent(k)), awsEncode(decodeURIComponent(v))];
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

// Returns null when the request is correctly signed, else why not. `cred`
// and `now` are the proxy's own except in the self-test.
function checkSignature(req, body, cred = { accessKey, secretKey, region }, now = Date.now()) {
  const auth = req.headers['authorization'];
  if (!auth) return 'no Authorization header';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return `malformed Authorization: ${auth}`;
  const [, key, date, reg, service, signedList, signature] = m;
  if (key !== cred.accessKey) return `access key ${key}, want ${cred.accessKey}`;
  if (reg !== cred.region) return `region ${reg} in the scope, want ${cred.region}`;
  if (service !== 's3') return `service ${service} in the scope, want s3`;
  const amzDate = req.headers['x-amz-date'];
  if (!amzDate || !amzDate.startsWith(date)) return 'x-amz-date missing or not the scope date';
  const t = Date.parse(amzDate.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));
  if (!(Math.abs(now - t) < 15 * 60 * 1000)) return `x-amz-date ${amzDate} is more than 15 minutes off`;
  const signed = signedList.split(';');
  const payload = req.headers['x-amz-content-sha256'];
  if (!payload) return 'no x-amz-content-sha256 header';
  if (payload !== sha256(body)) return `x-amz-content-sha256 ${payload} is not the SHA-256 of the ${body.length}-byte body`;
  for (const h of ['host', 'x-amz-date', 'x-amz-content-sha256'])
    if (!signed.includes(h)) return `${h} is not signed`;
  for (const h of Object.keys(req.headers))
    if (h.startsWith('x-amz-') && !signed.includes(h)) return `${h} is sent but not signed`;
  const [path, query] = (() => {
    const i = req.url.indexOf('?');
    return i < 0 ? [req.url, ''] : [req.url.slice(0, i), req.url.slice(i + 1)];
  })();
  const missing = signed.filter(h => req.headers[h] === undefined);
  if (missing.length > 0) return `signed header ${missing.join(', ')} is not in the request`;
  const headers = signed.map(h => `${h}:${String(req.headers[h]).trim().replace(/\s+/g, ' ')}\n`);
  const canonical = [req.method, path, canonicalQuery(query), headers.join(''), signedList, payload].join('\n');
  const scope = `${date}/${reg}/s3/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  let k = hmac('AWS4' + cred.secretKey, date);
  k = hmac(k, reg);
  k = hmac(k, 's3');
  k = hmac(k, 'aws4_request');
  const want = crypto.createHmac('sha256', k).update(toSign).digest('hex');
  if (want !== signature) return `signature mismatch; canonical request was:\n${canonical}`;
  return null;
}

function errorBody(code, message) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><Resource></Resource><RequestId>proxy</RequestId></Error>`;
}

function takeFault(req) {
  for (const f of faults) {
    if (f.count <= 0) continue;
    if (f.method && f.method !== req.method) continue;
    if (f.match && !req.url.includes(f.match)) continue;
    if (f.skip > 0) {
      f.skip--;
      continue;
    }
    if (++f.seen % f.every !== 0) continue;
    f.count--;
    return f;
  }
  return null;
}

function control(req, res, url) {
  const q = url.searchParams;
  if (url.pathname === '/__proxy/fault' && req.method === 'POST') {
    faults.push({
      kind: q.get('kind'),
      count: Number(q.get('count') || 1),
      method: q.get('method') || '',
      match: q.get('match') || '',
      ms: Number(q.get('ms') || 0),
      offset: Number(q.get('offset') || 0),
      every: Math.max(1, Number(q.get('every') || 1)),
      seen: 0,
      skip: Number(q.get('skip') || 0),
    });
    res.end('ok\n');
  } else if (url.pathname === '/__proxy/clear' && req.method === 'POST') {
    faults = [];
    res.end('ok\n');
  } else if (url.pathname === '/__proxy/log') {
    res.setHeader('Content-Type', 'text/plain');
    res.end(log.map(r =>
      `${r.method} ${r.url} host=${r.host} conn=${r.conn} sig=${r.ok ? 'ok' : 'bad'} signed=${r.signed}` +
      ` range=${r.range || '-'} inm=${r.inm || '-'} fault=${r.fault || '-'}` +
      (r.why ? ` why=${r.why.replace(/\n/g, '\\n')}` : '') + '\n').join(''));
  } else if (url.pathname === '/__proxy/reset' && req.method === 'POST') {
    log = [];
    res.end('ok\n');
  } else {
    res.statusCode = 404;
    res.end('unknown control request\n');
  }
}

function forward(req, res, body, fault) {
  const opts = {
    host: up.hostname,
    port: up.port,
    method: req.method,
    path: req.url,
    headers: req.headers,
    agent,
  };
  const out = http.request(opts, ures => {
    const chunks = [];
    ures.on('data', c => chunks.push(c));
    ures.on('end', () => {
      let data = Buffer.concat(chunks);
      const headers = { ...ures.headers };
      if (fault && fault.kind === 'corrupt' && data.length > fault.offset)
        data[fault.offset] ^= 0x5a;
      if (fault && fault.kind === 'truncate' && data.length > 1) {
        res.writeHead(ures.statusCode, headers);
        res.write(data.subarray(0, data.length >> 1));
        setTimeout(() => res.socket && res.socket.destroy(), 20);
        return;
      }
      if (fault && fault.kind === 'lost_answer') return res.socket && res.socket.destroy();
      res.writeHead(ures.statusCode, headers);
      res.end(data);
    });
  });
  out.on('error', e => {
    res.statusCode = 502;
    res.end(errorBody('BadGateway', String(e)));
  });
  out.end(body);
}

// The verifier checks itself against AWS's published example (GET Object
// with a Range, "Signature Calculations for the Authorization Header" in
// the S3 API reference) before it judges anyone else's signatures.
function selfTest() {
  const empty = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  const req = {
    method: 'GET',
    url: '/test.txt',
    headers: {
      host: 'examplebucket.s3.amazonaws.com',
      range: 'bytes=0-9',
      'x-amz-content-sha256': empty,
      'x-amz-date': '20130524T000000Z',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,' +
        'SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,' +
        'Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    },
  };
  const cred = {
    accessKey: 'AKIAIOSFODNN7EXAMPLE',
    secretKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
    region: 'us-east-1',
  };
  const now = Date.parse('2013-05-24T00:00:00Z');
  const good = checkSignature(req, Buffer.alloc(0), cred, now);
  req.headers.range = 'bytes=0-8';
  const bad = checkSignature(req, Buffer.alloc(0), cred, now);
  if (good !== null || bad === null) {
    console.error(`s3_proxy: SigV4 self-test failed: ${good || 'a changed header was accepted'}`);
    process.exit(1);
  }
}
selfTest();

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://proxy');
  if (url.pathname.startsWith('/__proxy/')) return control(req, res, url);
  const chunks = [];
  const fault = takeFault(req);
  if (fault && fault.kind === 'reset_upload') {
    const half = Number(req.headers['content-length'] || 0) >> 1;
    let got = 0;
    log.push({ method: req.method, url: req.url, host: req.headers['host'],
               conn: req.socket.remotePort, signed: '', ok: true, why: null,
               range: req.headers['range'], fault: fault.kind });
    if (half === 0) return req.socket.destroy();
    req.on('data', c => { got += c.length; if (got >= half) req.socket.destroy(); });
    return;
  }
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const why = checkSignature(req, body);
    log.push({
      method: req.method,
      url: req.url,
      host: req.headers['host'],
      conn: req.socket.remotePort,
      signed: /SignedHeaders=([^,]+)/.exec(req.headers['authorization'] || '')?.[1] || '',
      ok: why === null,
      why,
      range: req.headers['range'],
      inm: req.headers['if-none-match'],
      fault: fault ? fault.kind : null,
    });
    if (why !== null) {
      res.statusCode = 403;
      res.setHeader('Content-Type', 'application/xml');
      return res.end(errorBody('SignatureDoesNotMatch', why.replace(/[<&>]/g, ' ')));
    }
    if (fault) {
      switch (fault.kind) {
        case '500':
          res.statusCode = 500;
          return res.end(errorBody('InternalError', 'injected by s3_proxy'));
        case '503':
          res.statusCode = 503;
          return res.end(errorBody('ServiceUnavailable', 'injected by s3_proxy'));
        case 'slowdown':
          res.statusCode = 503;
          return res.end(errorBody('SlowDown', 'Please reduce your request rate.'));
        case '412':
          res.statusCode = 412;
          return res.end(errorBody('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold'));
        case 'reset':
          return req.socket.destroy();
        case 'delay':
          return setTimeout(() => forward(req, res, body, null), fault.ms);
        default:
          return forward(req, res, body, fault);
      }
    }
    forward(req, res, body, null);
  });
});

server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => {
  console.log(String(server.address().port));
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
