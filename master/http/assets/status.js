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
  const bad = new Set(['server_down', 'no_servers', 'tablets_unassigned']);
  for (const w of c.warnings) {
    ul.append(el('li', bad.has(w.kind) ? 'bad' : '', w.text));
  }
  if (c.warnings.length === 0) {
    ul.append(el('li', 'good', 'Healthy: every server live, every tablet serving.'));
  }
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
  a.href = 'http://' + httpAddress + '/metrics';
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
              td(t.splits, 'num'), td(t.merges, 'num'));
    tb.append(tr);
  }
}

function tabletTitle(t, servers) {
  const s = servers.get(t.server_id);
  const lines = [
    'tablet ' + t.id + ' (' + t.state + ')',
    'start: ' + shortKey(t.start.text, false),
    'end:   ' + shortKey(t.end.text, true),
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
    'start: ' + shortKey(first.start.text, false),
    'end:   ' + shortKey(last.end.text, true),
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

async function refresh() {
  const status = document.getElementById('refresh');
  try {
    const [c, sv, tb, ev, bal] = await Promise.all([
      getJson('/api/cluster'), getJson('/api/servers'), getJson('/api/tables'),
      getJson('/api/events?limit=' + MAX_EVENTS), getJson('/api/balance')]);
    const tablets = await Promise.all(tb.tables.map(
        t => getJson('/api/tables/' + encodeURIComponent(t.name) + '/tablets')));
    const servers = new Map(sv.servers.map(s => [s.id, s]));
    renderHeader(c);
    renderServers(sv.servers);
    renderBalance(bal);
    renderTables(tb.tables);
    renderKeyspace(tb.tables, tablets, servers);
    renderTransitions(c);
    renderEvents(ev.events);
    status.classList.remove('stale');
    status.textContent = 'updated ' + fmtTime(c.now_ms);
  } catch (err) {
    status.classList.add('stale');
    status.textContent = 'refresh failed (' + err.message + '); retrying';
  }
  setTimeout(refresh, REFRESH_MS);
}

refresh();
