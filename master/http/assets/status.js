// The master's status page: reads the JSON API every few seconds and
// rebuilds the page. Every name and key reaches the DOM through
// textContent or the title property, never as markup, so hostile keys
// and names render as text. Keys are shown in their escaped form (the
// API's "text": printable ASCII with \xNN for other bytes).
'use strict';

const REFRESH_MS = 3000;
const MAX_EVENTS = 40;
const MAX_KEY_SHOWN = 160;
const MAX_SEGMENTS = 240;
const MAX_TRANSITIONS = 20;
const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#b07aa1', '#76b7b2',
                 '#edc948', '#e15759', '#9c755f', '#ff9da7', '#bab0ac'];

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function td(text, cls) { return el('td', cls, text); }

function serverColor(id) {
  return id ? PALETTE[(id - 1) % PALETTE.length] : '#c9cdd4';
}

function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
}

function fmtCount(n) {
  if (n < 10000) return String(n);
  if (n < 1e6) return (n / 1e3).toFixed(1) + 'k';
  if (n < 1e9) return (n / 1e6).toFixed(1) + 'M';
  return (n / 1e9).toFixed(1) + 'G';
}

function fmtRate(r) { return r >= 100 ? r.toFixed(0) : r.toFixed(1); }

function fmtAge(ms) {
  if (ms < 1000) return ms + ' ms';
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.floor(s % 60) + ' s';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor(s % 3600 / 60) + ' min';
  return Math.floor(s / 86400) + ' d ' + Math.floor(s % 86400 / 3600) + ' h';
}

function fmtTime(ms) {
  const d = new Date(ms);
  const p = (n, w) => String(n).padStart(w || 2, '0');
  return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) +
         ' ' + p(d.getHours()) + ':' + p(d.getMinutes()) + ':' +
         p(d.getSeconds());
}

function fmtClock(ms) {
  return fmtTime(ms).slice(5);
}

function shortKey(text, isEnd) {
  if (text === '') return isEnd ? '(end)' : '(start)';
  return text.length > MAX_KEY_SHOWN ? text.slice(0, MAX_KEY_SHOWN) + '\u2026' : text;
}

function stateBadge(state) { return el('span', 'state ' + state, state); }

async function getJson(path) {
  const r = await fetch(path, {cache: 'no-store'});
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return r.json();
}

function renderHeader(c) {
  document.getElementById('cluster').textContent = c.cluster;
  document.title = 'Mica ' + c.cluster;
  const facts = [
    ['master', c.master_address || c.http_address],
    ['version', c.version],
    ['uptime', fmtAge(c.uptime_s * 1000)],
    ['servers', c.servers.live + ' live, ' + c.servers.dead + ' dead' +
                (c.servers.suspect ? ', ' + c.servers.suspect + ' suspect' : '')],
    ['tables', c.tables],
    ['tablets', c.tablets.current],
    ['data', fmtBytes(c.bytes) + ', ' + fmtCount(c.keys) + ' keys'],
    ['balancer', c.balancer_mode || (c.balancer ? 'on' : 'off')],
    ['merges', c.merges ? 'on' : 'off'],
  ];
  const dl = document.getElementById('facts');
  dl.replaceChildren();
  for (const [k, v] of facts) {
    const d = el('div');
    d.append(el('dt', null, k), el('dd', null, v));
    dl.append(d);
  }
  const ul = document.getElementById('warnings');
  ul.replaceChildren();
  renderInsecureBanner(c);
  const bad = new Set(['server_down', 'no_servers', 'tablets_unassigned',
                       'insecure_plaintext']);
  for (const w of c.warnings) {
    ul.append(el('li', bad.has(w.kind) ? 'bad' : '', w.text));
  }
  if (c.warnings.length === 0) {
    ul.append(el('li', 'good', 'Healthy: every server live, every tablet serving.'));
  }
}

// A red banner across the page while the master serves plaintext on a
// non-loopback address (started with --insecure; docs/security.md).
function renderInsecureBanner(c) {
  const b = document.getElementById('insecure-banner');
  b.hidden = !c.insecure;
  b.textContent = c.insecure
    ? 'INSECURE: started with --insecure, plaintext on a non-loopback address (' +
      c.insecure + '). Anyone on the network can read and change this traffic.'
    : '';
}

// A link to a tablet server's /metrics, or a dash when it announced no
// HTTP address. The address comes from the server, so only a plain
// host:port (or [v6]:port) becomes a link.
function metricsLink(httpAddress) {
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/.test(httpAddress || '')) {
    return td('\u2013');
  }
  const cell = td('');
  const a = el('a', null, httpAddress);
  // Tablet servers serve HTTPS exactly when the master does (same TLS flags).
  a.href = (location.protocol === 'https:' ? 'https://' : 'http://') +
           httpAddress + '/metrics';
  a.rel = 'noreferrer';
  cell.append(a);
  return cell;
}

function renderServers(list) {
  const tb = document.querySelector('#servers tbody');
  tb.replaceChildren();
  for (const s of list) {
    const tr = el('tr');
    const id = td('');
    const sw = el('span', 'swatch');
    sw.style.background = serverColor(s.id);
    id.append(sw, document.createTextNode(String(s.id)));
    const st = td('');
    st.append(stateBadge(s.state));
    tr.append(id, td(s.address), metricsLink(s.http_address), st,
              td(fmtAge(s.lease_age_ms), 'num'),
              td(s.tablets, 'num'), td(fmtBytes(s.bytes), 'num'),
              td(fmtCount(s.keys), 'num'), td(fmtRate(s.read_rate), 'num'),
              td(fmtRate(s.write_rate), 'num'), loadCell(s),
              td(s.last_heartbeat_ms === null ? 'none since master start'
                                              : fmtTime(s.last_heartbeat_ms)));
    tb.append(tr);
  }
}

function renderTables(list) {
  const tb = document.querySelector('#tables tbody');
  tb.replaceChildren();
  for (const t of list) {
    const tr = el('tr');
    tr.append(td(t.name), td(t.tablets, 'num'), td(fmtBytes(t.bytes), 'num'),
              td(fmtCount(t.keys), 'num'), td(fmtRate(t.read_rate), 'num'),
              td(fmtRate(t.write_rate), 'num'), td(t.in_transition, 'num'),
              td(t.splits, 'num'), td(t.merges, 'num'), td(optionsText(t.options)));
    tb.append(tr);
  }
}

// A table's options in one line: only those not at the servers' default.
function optionsText(o) {
  if (!o) return '';
  const parts = [];
  if (o.compression !== 'default') parts.push(o.compression);
  if (o.split_threshold_bytes) parts.push('split ' + fmtBytes(o.split_threshold_bytes));
  if (o.block_size) parts.push('block ' + fmtBytes(o.block_size));
  if (o.bloom_bits >= 0) parts.push('bloom ' + o.bloom_bits);
  if (o.salt_buckets) parts.push('salt ' + o.salt_buckets);
  return parts.length ? parts.join(', ') : 'default';
}

// A boundary of a salted table's tablet, as clients write keys: the salt
// bucket and the key inside it (the server strips the byte).
function boundText(k, u, isEnd) {
  if (!u) return shortKey(k.text, isEnd);
  return 'bucket ' + u.bucket + ' ' + shortKey(u.text, isEnd);
}

function tabletTitle(t, servers) {
  const s = servers.get(t.server_id);
  const lines = [
    'tablet ' + t.id + ' (' + t.state + ')',
    'start: ' + boundText(t.start, t.start_unsalted, false),
    'end:   ' + boundText(t.end, t.end_unsalted, true),
    'size:  ' + fmtBytes(t.bytes) + ', ' + fmtCount(t.keys) + ' keys',
    'server: ' + (t.server_id ? t.server_id + ' ' + (s ? s.address : t.server_address)
                              : 'none'),
    'reads/s ' + fmtRate(t.read_rate) + ', writes/s ' + fmtRate(t.write_rate),
  ];
  if (t.transition) lines.push('under way: ' + t.transition);
  return lines.join('\n');
}

// A table of more tablets than MAX_SEGMENTS is drawn as MAX_SEGMENTS runs
// of neighbouring tablets, each coloured by the server holding most of its
// bytes, so the bar stays readable and cheap to draw.
function segments(list) {
  const per = Math.ceil(list.length / MAX_SEGMENTS);
  const out = [];
  for (let i = 0; i < list.length; i += per) {
    const tablets = list.slice(i, i + per);
    const by = new Map();  // server id -> {n, bytes}
    for (const x of tablets) {
      const e = by.get(x.server_id) || {n: 0, bytes: 0};
      e.n++;
      e.bytes += x.bytes;
      by.set(x.server_id, e);
    }
    let best = 0, bestKey = -1;
    for (const [id, e] of by) {
      const key = e.bytes * 1e6 + e.n;  // most bytes, then most tablets
      if (key > bestKey) { best = id; bestKey = key; }
    }
    out.push({tablets, server_id: best, by,
              bytes: tablets.reduce((a, x) => a + x.bytes, 0),
              in_transition: tablets.some(x => x.in_transition)});
  }
  return out;
}

function groupTitle(g, servers) {
  const first = g.tablets[0], last = g.tablets[g.tablets.length - 1];
  const lines = [
    g.tablets.length + ' tablets, ' + first.id + ' to ' + last.id,
    'start: ' + boundText(first.start, first.start_unsalted, false),
    'end:   ' + boundText(last.end, last.end_unsalted, true),
    'size:  ' + fmtBytes(g.bytes),
  ];
  for (const [id, e] of g.by) {
    const s = servers.get(id);
    lines.push((id ? 'server ' + id + ' ' + (s ? s.address : '') : 'unassigned') +
               ': ' + e.n + ' tablets, ' + fmtBytes(e.bytes));
  }
  if (g.in_transition) lines.push('some in transition');
  return lines.join('\n');
}

function renderKeyspace(tables, tablets, servers) {
  const box = document.getElementById('keyspace');
  box.replaceChildren();
  tables.forEach((t, i) => {
    const list = tablets[i].tablets;
    const total = list.reduce((a, x) => a + x.bytes, 0);
    const row = el('div', 'ks-row');
    const name = el('div', 'ks-name', t.name);
    name.title = t.name;
    const bar = el('div', 'ks-bar');
    if (list.length > MAX_SEGMENTS) bar.classList.add('dense');
    for (const g of segments(list)) {
      const seg = el('div', 'ks-seg');
      // Sized by bytes; an empty tablet still gets a sliver (min-width).
      const w = total > 0 ? g.bytes / total : g.tablets.length / list.length;
      seg.style.flexGrow = String(Math.max(w, 0.002));
      if (g.server_id === 0) {
        seg.classList.add('unassigned');
      } else {
        seg.style.backgroundColor = serverColor(g.server_id);
        if (g.in_transition) seg.classList.add('moving');
      }
      seg.title = g.tablets.length === 1 ? tabletTitle(g.tablets[0], servers)
                                         : groupTitle(g, servers);
      bar.append(seg);
    }
    row.append(name, bar, el('div', 'ks-size',
                             fmtBytes(total) + ' \u00b7 ' + list.length + ' tablets'));
    box.append(row);
  });
  const legend = document.getElementById('legend');
  legend.replaceChildren();
  for (const s of servers.values()) {
    if (s.state === 'dead') continue;
    const item = el('span');
    const sw = el('span', 'swatch');
    sw.style.background = serverColor(s.id);
    item.append(sw, document.createTextNode('server ' + s.id + ' ' + s.address));
    legend.append(item);
  }
  const un = el('span');
  const sw = el('span', 'swatch');
  sw.style.background = '#c9cdd4';
  un.append(sw, document.createTextNode('unassigned (striped: in transition)'));
  legend.append(un);
}

function renderTransitions(c) {
  const tb = document.querySelector('#transitions tbody');
  tb.replaceChildren();
  for (const t of c.transitions.slice(0, MAX_TRANSITIONS)) {
    const tr = el('tr');
    const st = td('');
    st.append(stateBadge(t.state));
    const sk = td(shortKey(t.start.text, false), 'key');
    sk.title = t.start.text;
    const ek = td(shortKey(t.end.text, true), 'key');
    ek.title = t.end.text;
    tr.append(td(t.table), td(t.id, 'num'), sk, ek, st, td(t.transition, 'text'));
    tb.append(tr);
  }
  const total = c.tablets.in_transition;
  if (total > MAX_TRANSITIONS) {
    const tr = el('tr');
    const more = td('... and ' + (total - MAX_TRANSITIONS) + ' more', 'muted');
    more.colSpan = 6;
    tr.append(more);
    tb.append(tr);
  }
  document.getElementById('transitions').hidden = total === 0;
  document.getElementById('no-transitions').hidden = total !== 0;
}

function renderEvents(list) {
  const tb = document.querySelector('#events tbody');
  tb.replaceChildren();
  for (const e of list) {
    const tr = el('tr');
    tr.append(td(fmtClock(e.time_ms)), td(e.kind), td(e.text, 'text'));
    tb.append(tr);
  }
}

// ---- masters (high availability, docs/ha.md) ----

function httpLink(addr, path, text) {
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/.test(addr || '')) {
    return el('span', 'muted', '\u2013');
  }
  const a = el('a', null, text || addr);
  a.href = 'http://' + addr + path;
  a.rel = 'noreferrer';
  return a;
}

// The "Masters" section: role of this master, the active one, the
// standbys and the ZooKeeper session. On a standby it is the whole page:
// a standby has no cluster state, and shows none rather than stale data.
function renderMasters(c) {
  const ha = c.ha;
  const sec = document.getElementById('masters');
  if (!ha || !sec) return;
  const standby = ha.role === 'standby';
  sec.hidden = false;
  for (const e of document.querySelectorAll('main > section:not(#masters), main > .cols')) {
    e.hidden = standby;
  }
  const banner = document.getElementById('ha-banner');
  banner.replaceChildren();
  banner.className = standby ? 'standby' : 'muted';
  if (standby) {
    banner.append('This master (' + ha.self.rpc + ') is a standby: it holds no ' +
                  'cluster state. ');
    if (ha.active) {
      banner.append('The active master is ' + ha.active.rpc + ' (epoch ' +
                    ha.active.epoch + '): ',
                    httpLink(ha.active.http, '/', 'its status page'), '.');
    } else {
      banner.append('No master is active right now.');
    }
  } else {
    banner.append(ha.role === 'single'
        ? 'Single master (no ZooKeeper), master epoch ' + ha.epoch + '.'
        : 'This master is active, master epoch ' + ha.epoch + '.');
  }
  const tb = document.querySelector('#ha tbody');
  tb.replaceChildren();
  const rows = [];
  if (ha.active) rows.push(['active', ha.active]);
  for (const s of ha.standbys) rows.push(['standby', s]);
  for (const [role, m] of rows) {
    const tr = el('tr');
    const self = m.rpc === ha.self.rpc;
    const cell = td('');
    cell.append(httpLink(m.http, '/'));
    tr.append(td(role + (self ? ' (this one)' : '')), td(m.rpc), cell);
    tb.append(tr);
  }
  const zk = document.getElementById('ha-zk');
  zk.textContent = ha.zookeeper
      ? 'ZooKeeper session ' + ha.zookeeper.session + ' (' +
        ha.zookeeper.session_id + ', timeout ' +
        (ha.zookeeper.session_timeout_ms / 1000) + ' s); ' +
        ha.standbys_total + ' standby' + (ha.standbys_total === 1 ? '' : 's')
      : '';
}

function renderStandbyHeader(c) {
  document.getElementById('cluster').textContent = c.cluster + ' (standby)';
  document.title = 'Mica ' + c.cluster + ' (standby)';
  const dl = document.getElementById('facts');
  dl.replaceChildren();
  for (const [k, v] of [['standby master', c.master_address], ['version', c.version],
                        ['uptime', fmtAge(c.uptime_s * 1000)]]) {
    const d = el('div');
    d.append(el('dt', null, k), el('dd', null, v));
    dl.append(d);
  }
  document.getElementById('warnings').replaceChildren();
}

// ---- Heat: the hot list and the Key Visualizer-style heat map ----
//
// /api/hot ranks the current tablets by recent ops/s; /api/heatmap gives one
// table's load history: columns are time buckets (oldest left), rows the key
// space (first key at the top), each cell a tablet as it was in that bucket,
// coloured by its ops/s on a log scale against the busiest cell shown. The
// key axis is cut at every tablet boundary seen in the window, so a split
// shows as one tall cell becoming two; with more boundaries than
// MAX_HEAT_ROWS, neighbouring ranges share a row. Keys and names reach the
// DOM only as text and title values.

const MAX_HOT = 10;
const MAX_HEAT_ROWS = 160;
const MAX_HEAT_CELLS = 20000;
let heatTable = null;  // the table chosen in the selector; null = hottest
// The map's answer can be large (buckets x tablets cells), so it is fetched
// again only when its table changes or about a bucket has passed (at most
// every HEAT_REFRESH_MS), not on every refresh of the page.
const HEAT_REFRESH_MS = 15000;
let heatShown = {table: null, at: 0, bucketMs: 0};

// Bytes of a key from its base64 form, as a string of char codes 0..255 so
// that < compares keys bytewise.
function keyBytes(k) { return atob(k.b64); }

function heatColor(ops, max) {
  if (!(ops > 0) || !(max > 0)) return '#1b2030';
  const t = Math.min(1, Math.log1p(ops) / Math.log1p(max));
  return 'hsl(' + Math.round(230 - 230 * t) + ', 85%, ' +
         Math.round(22 + 36 * t) + '%)';
}

function fmtBytesRate(r) { return fmtBytes(Math.round(r)) + '/s'; }

function renderHot(hot) {
  const tb = document.querySelector('#hot tbody');
  tb.replaceChildren();
  for (const t of hot.tablets) {
    const tr = el('tr');
    const sk = td(shortKey(t.start.text, false), 'key');
    sk.title = t.start.text;
    const ek = td(shortKey(t.end.text, true), 'key');
    ek.title = t.end.text;
    tr.append(td(t.table), td(t.id, 'num'), sk, ek,
              td(t.server_id + ' ' + t.server_address),
              td(fmtRate(t.ops_per_sec), 'num'), td(fmtRate(t.reads_per_sec), 'num'),
              td(fmtRate(t.writes_per_sec), 'num'), td(fmtRate(t.scans_per_sec), 'num'),
              td(fmtBytesRate(t.read_bytes_per_sec), 'num'),
              td(fmtBytesRate(t.write_bytes_per_sec), 'num'));
    tb.append(tr);
  }
  document.getElementById('hot').hidden = hot.tablets.length === 0;
  document.getElementById('no-hot').hidden = hot.tablets.length !== 0;
  const kb = document.querySelector('#hot-keys tbody');
  kb.replaceChildren();
  for (const k of hot.keys) {
    const tr = el('tr');
    const kc = td(shortKey(k.key.text, false), 'key');
    kc.title = k.key.text;
    tr.append(td(k.table), td(k.tablet_id, 'num'), kc, td(k.kind),
              td(fmtRate(k.ops_per_sec), 'num'));
    kb.append(tr);
  }
  document.getElementById('hot-keys').hidden = hot.keys.length === 0;
}

function heatCellTitle(t, b, c, bucketMs, servers) {
  const s = servers.get(c[1]);
  return ['tablet ' + t.id + (t.current ? '' : ' (since split or merged)'),
          'start: ' + shortKey(t.start.text, false),
          'end:   ' + shortKey(t.end.text, true),
          'time:  ' + fmtTime(b.start_ms) + ' + ' + fmtAge(bucketMs),
          'ops/s ' + fmtRate(c[2]) + ' (reads ' + fmtRate(c[3]) + ', writes ' +
              fmtRate(c[4]) + ', scans ' + fmtRate(c[5]) + ')',
          'read ' + fmtBytesRate(c[6]) + ', written ' + fmtBytesRate(c[7]),
          'server: ' + c[1] + (s ? ' ' + s.address : '')].join('\n');
}

function renderHeatmap(hm, servers) {
  const box = document.getElementById('heatmap');
  const note = document.getElementById('heat-note');
  box.replaceChildren();
  let first = hm.buckets.findIndex(b => b.cells.length > 0);
  if (first < 0) {
    note.textContent = 'No load reported for ' + hm.table + ' in the last ' +
                       fmtAge(hm.bucket_ms * hm.max_buckets) + '.';
    return;
  }
  const buckets = hm.buckets.slice(first);
  // The key axis: every boundary of every tablet in the window, in byte
  // order; row i runs from bounds[i] to bounds[i+1] (the last to the end).
  const set = new Map();
  for (const t of hm.tablets) {
    set.set(keyBytes(t.start), t.start);
    if (t.end.b64 !== '') set.set(keyBytes(t.end), t.end);
  }
  const bounds = [...set.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(bounds.map((k, i) => [k, i]));
  const rows = Math.min(bounds.length, MAX_HEAT_ROWS);
  const rowOf = i => Math.floor(i * rows / bounds.length);
  let max = 0;
  for (const b of buckets) for (const c of b.cells) max = Math.max(max, c[2]);
  const w = 100 / buckets.length;
  buckets.forEach((b, col) => {
    // Hottest last, so that it is on top where rows are shared.
    const list = b.cells.slice().sort((x, y) => x[2] - y[2]);
    for (const c of list) {
      const t = hm.tablets[c[0]];
      const r0 = rowOf(index.get(keyBytes(t.start)));
      const endIdx = t.end.b64 === '' ? bounds.length : index.get(keyBytes(t.end));
      const r1 = Math.max(r0, rowOf(endIdx - 1));
      const d = el('div', 'hm-cell');
      d.style.left = (col * w) + '%';
      d.style.width = w + '%';
      d.style.top = (r0 * 100 / rows) + '%';
      d.style.height = ((r1 - r0 + 1) * 100 / rows) + '%';
      d.style.backgroundColor = heatColor(c[2], max);
      d.title = heatCellTitle(t, b, c, hm.bucket_ms, servers);
      box.append(d);
    }
  });
  const last = buckets[buckets.length - 1];
  note.textContent = buckets.length + ' buckets of ' + fmtAge(hm.bucket_ms) +
      ' from ' + fmtClock(buckets[0].start_ms) + ' to ' +
      fmtClock(last.start_ms + last.secs * 1000) + ' (left to right); ' +
      bounds.length + ' key ranges, first key at the top; hottest cell ' +
      fmtRate(max) + ' ops/s' +
      (hm.dropped ? '; ' + hm.dropped + ' reports over the bounds not shown' : '') +
      (hm.cells_omitted ? '; ' + hm.cells_omitted + ' older cells not shown (over ' +
       MAX_HEAT_CELLS + ')' : '');
}

function renderHeatTables(tables, hot) {
  const sel = document.getElementById('heat-table');
  const names = tables.map(t => t.name);
  if (heatTable !== null && !names.includes(heatTable)) heatTable = null;
  const chosen = heatTable !== null ? heatTable
               : hot.tablets.length ? hot.tablets[0].table
               : names.length ? names[0] : null;
  sel.replaceChildren();
  for (const n of names) {
    const o = el('option', null, n);
    o.value = n;
    o.defaultSelected = n === chosen;  // the attribute: kept across refreshes
    sel.append(o);
  }
  return chosen;
}

let lastTables = [], lastServers = new Map();

async function refreshHeat(tables, servers) {
  lastTables = tables;
  lastServers = servers;
  const status = document.getElementById('heat-note');
  try {
    const hot = await getJson('/api/hot?limit=' + MAX_HOT);
    renderHot(hot);
    const table = renderHeatTables(tables, hot);
    if (table === null) {
      document.getElementById('heatmap').replaceChildren();
      status.textContent = 'No tables.';
      return;
    }
    const wait = Math.min(heatShown.bucketMs || 0, HEAT_REFRESH_MS);
    if (table === heatShown.table && Date.now() - heatShown.at < wait) return;
    const hm = await getJson('/api/heatmap?table=' + encodeURIComponent(table) +
                             '&limit=' + MAX_HEAT_CELLS);
    heatShown = {table, at: Date.now(), bucketMs: hm.bucket_ms};
    renderHeatmap(hm, servers);
  } catch (err) {
    status.textContent = 'heat map refresh failed (' + err.message + ')';
  }
}

function setupHeat() {
  document.getElementById('heat-table').addEventListener('change', e => {
    heatTable = e.target.value;
    refreshHeat(lastTables, lastServers);
  });
}

// The load the balancer weighs (reads+writes/s), marked hot or draining.
function loadCell(s) {
  const cell = td(fmtRate(s.load || 0), 'num');
  if (s.draining) cell.append(' ', el('span', 'state closing', 'draining'));
  else if (s.hot) cell.append(' ', el('span', 'state suspect', 'hot'));
  return cell;
}

// Suggest mode: the moves the balancer proposes (mica balance --plan).
function renderBalance(b) {
  const sec = document.getElementById('balance');
  const ul = document.getElementById('suggested');
  ul.replaceChildren();
  sec.hidden = b.mode !== 'suggest';
  for (const m of b.moves) {
    ul.append(el('li', null, 'tablet ' + m.tablet_id + ': server ' +
                 m.from_server_id + ' \u2192 ' + m.to_server_id + ' (' +
                 m.reason + ')'));
  }
  if (b.moves.length === 0) ul.append(el('li', 'good', 'No moves proposed.'));
}

// Table snapshots (/api/snapshots), newest name order as the master sends.
function renderSnapshots(s) {
  const tb = document.querySelector('#snapshots tbody');
  tb.replaceChildren();
  for (const x of s.snapshots) {
    const tr = el('tr');
    tr.append(td(x.name), td(x.table), td(x.state), td(x.tablets, 'num'),
              td(x.files, 'num'), td(fmtBytes(x.bytes), 'num'),
              td(fmtTime(x.created_ms)));
    tb.append(tr);
  }
  document.getElementById('no-snapshots').hidden = s.snapshots.length > 0;
}

async function refresh() {
  const status = document.getElementById('refresh');
  try {
    const c0 = await getJson('/api/cluster');
    if (c0.role === 'standby') {
      renderStandbyHeader(c0);
      renderMasters(c0);
      status.classList.remove('stale');
      status.textContent = 'updated ' + fmtTime(c0.now_ms);
      setTimeout(refresh, REFRESH_MS);
      return;
    }
    const [c, sv, tb, ev, bal, snaps] = await Promise.all([
      c0, getJson('/api/servers'), getJson('/api/tables'),
      getJson('/api/events?limit=' + MAX_EVENTS), getJson('/api/balance'),
      getJson('/api/snapshots')]);
    const tablets = await Promise.all(tb.tables.map(
        t => getJson('/api/tables/' + encodeURIComponent(t.name) + '/tablets')));
    const servers = new Map(sv.servers.map(s => [s.id, s]));
    renderHeader(c);
    renderMasters(c);
    renderServers(sv.servers);
    renderBalance(bal);
    renderTables(tb.tables);
    renderSnapshots(snaps);
    renderKeyspace(tb.tables, tablets, servers);
    renderTransitions(c);
    renderEvents(ev.events);
    await refreshHeat(tb.tables, servers);
    status.classList.remove('stale');
    status.textContent = 'updated ' + fmtTime(c.now_ms);
  } catch (err) {
    status.classList.add('stale');
    status.textContent = 'refresh failed (' + err.message + '); retrying';
  }
  setTimeout(refresh, REFRESH_MS);
}

setupHeat();
refresh();
