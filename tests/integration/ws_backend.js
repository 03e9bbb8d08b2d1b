'use strict';
/*
 * WebSocket test backend for Switchyard's integration tests (a real peer: the
 * node `ws` package from /work/main/node_modules).
 *
 *   node ws_backend.js '<json config>'       (or the config in $WS_BACKEND_CONFIG)
 *
 * It listens on 127.0.0.1 (port `port`, default 0 = any free one) and prints,
 * as its first stdout line, {"ev":"listening","port":N}. Every later stdout
 * line is one JSON event (see `emit` calls below) that the Python fixture
 * (ws_fixtures.py) collects, so tests wait for events instead of sleeping.
 *
 * Config keys:
 *   mode      "ws" (default) | "raw101"
 *   port      port to listen on (0)
 *   quiet     true: only the "listening" line, no per-connection events
 *   token     raw101: the Upgrade token answered in the 101 ("websocket")
 *   accept    raw101: Sec-WebSocket-Accept in the 101: "valid" | "wrong" | "none"
 *   only_if_upgrade  raw101: a request without Upgrade gets an ordinary 200
 *   tls_cert, tls_key  mode "ws": serve HTTPS / wss:// with this PEM certificate
 *                      and key (the /_seen and /_stats helpers then need https)
 *
 * mode "ws": an http server plus `ws`'s WebSocketServer, any path:
 *   ordinary requests      200 JSON {conn, method, url, version, headers, body_len}
 *                          with X-Conn-Id (the backend's TCP connection serial)
 *   GET /_seen             JSON list of every request head seen (ordinary and
 *                          upgrade): {conn, method, url, version, headers
 *                          ([[name, value], ...] as received), upgrade, head_len}
 *   GET /_stats            JSON {open_ws, max_open_ws, ws_total, tcp_open}
 *   upgrade .../reject/NNN answers NNN (Content-Length, no upgrade); the
 *                          connection stays HTTP: later bytes are parsed as
 *                          requests ("request" / "client_error" events)
 *   upgrade .../forge101   answers 101 with a WRONG Sec-WebSocket-Accept, then
 *                          echoes raw bytes
 *   upgrade, token not websocket: ignores the upgrade, 200 JSON echo, closes
 *   upgrade websocket      the echo server. Query `rate=B` reads at most B
 *                          bytes/s (pauses the socket), `sink=1` does not echo.
 *     messages: anything    echoed, text as text and binary as binary
 *               __headers__           -> JSON of this connection's handshake record
 *               __close__ CODE REASON -> ws.close(CODE, REASON)
 *               __pongs__             -> JSON {pings, pongs} received so far
 *               __stats__             -> JSON {rx_bytes, rx_msgs, sha256}
 *                                        (sha256 of every data payload received)
 *               __flood__ TOTAL CHUNK -> TOTAL bytes in binary messages of
 *                                        CHUNK bytes (backpressure respected), then
 *                                        text "__flood_done__ TOTAL SHA256"
 *     pings are answered by `ws` itself; pings and pongs received are reported.
 *
 * mode "raw101": a plain `net` server that reads a request head and answers
 *   101 with Upgrade: <token> (or an ordinary 200 when only_if_upgrade and the
 *   request has no Upgrade), then echoes every byte it receives.
 */

const http = require('http');
const https = require('https');
const fs = require('fs');
const net = require('net');
const crypto = require('crypto');
const { WebSocketServer } = require('ws');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const cfg = JSON.parse(process.argv[2] || process.env.WS_BACKEND_CONFIG || '{}');
const mode = cfg.mode || 'ws';
const quiet = !!cfg.quiet;

function emit(ev, always) {
  if (quiet && !always) return;
  process.stdout.write(JSON.stringify(ev) + '\n');
}

let nextConn = 0;
const seen = [];
const stats = { open_ws: 0, max_open_ws: 0, ws_total: 0, tcp_open: 0 };

function pairs(raw) {
  const out = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

function record(conn, method, url, version, headers, upgrade, headLen) {
  const rec = { conn, method, url, version, headers, upgrade, head_len: headLen };
  if (!quiet) seen.push(rec);
  emit(Object.assign({ ev: 'request' }, rec));
  return rec;
}

function reason(code) {
  return http.STATUS_CODES[code] || 'Status';
}

function acceptFor(key) {
  return crypto.createHash('sha1').update(key + GUID).digest('base64');
}

function tagSocket(sock) {
  if (sock._tid) return sock._tid;  // a connection handed back after a refused upgrade
  const id = ++nextConn;
  sock._tid = id;
  stats.tcp_open++;
  emit({ ev: 'tcp_open', conn: id });
  sock.on('close', () => {
    stats.tcp_open--;
    emit({ ev: 'tcp_close', conn: id });
  });
  return id;
}

// ------------------------------------------------------------------ mode ws

function jsonReply(res, status, obj, extra) {
  const body = Buffer.from(JSON.stringify(obj));
  res.writeHead(status, Object.assign({
    'Content-Type': 'application/json',
    'Content-Length': body.length,
  }, extra || {}));
  res.end(body);
}

function onRequest(req, res) {
  const conn = req.socket._tid;
  const path = new URL(req.url, 'http://backend').pathname;
  if (path === '/_seen') return jsonReply(res, 200, seen);
  if (path === '/_stats') return jsonReply(res, 200, stats);
  const rec = record(conn, req.method, req.url, req.httpVersion, pairs(req.rawHeaders), false, 0);
  let bodyLen = 0;
  req.on('data', (d) => { bodyLen += d.length; });
  req.on('end', () => {
    const m = /\/reject\/(\d{3})$/.exec(path);
    const status = m ? +m[1] : 200;
    jsonReply(res, status, Object.assign({ body_len: bodyLen }, rec), { 'X-Conn-Id': String(conn) });
  });
}

function rejectUpgrade(server, socket, conn, status, head) {
  const body = `rejected ${status}\n`;
  let extra = '';
  if (status === 426) {
    extra = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n';
  }
  socket.write(`HTTP/1.1 ${status} ${reason(status)}\r\nContent-Type: text/plain\r\n` +
               `Content-Length: ${body.length}\r\n${extra}X-Conn-Id: ${conn}\r\n\r\n${body}`);
  emit({ ev: 'reject', conn, status });
  // The connection stays HTTP (RFC 9110 7.8): hand it back to the http
  // server, so whatever arrives next is parsed as a request (reported as a
  // "request" event, or "client_error" if it is not HTTP).
  if (head.length) socket.unshift(head);
  server.emit('connection', socket);
}

function forge101(socket, conn, head) {
  const wrong = crypto.createHash('sha1').update('not the right key' + GUID).digest('base64');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
               `Sec-WebSocket-Accept: ${wrong}\r\n\r\n`);
  emit({ ev: 'forge101', conn });
  if (head.length) socket.write(head);
  socket.on('data', (d) => { emit({ ev: 'tunnel_bytes', conn, n: d.length }); socket.write(d); });
  socket.on('end', () => socket.end());
  socket.on('error', () => {});
}

function ignoreUpgrade(socket, conn, rec) {
  const body = Buffer.from(JSON.stringify(Object.assign({ body_len: 0 }, rec)));
  socket.end(Buffer.concat([Buffer.from(
    'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n' +
    `Content-Length: ${body.length}\r\nX-Conn-Id: ${conn}\r\nConnection: close\r\n\r\n`), body]));
  socket.on('error', () => {});
}

function flood(ws, total, chunk) {
  const h = crypto.createHash('sha256');
  let sent = 0;
  let seq = 0;
  let done = false;
  const pump = () => {
    while (!done && sent < total && ws.readyState === ws.OPEN && ws.bufferedAmount < 2 * chunk) {
      const n = Math.min(chunk, total - sent);
      const buf = Buffer.alloc(n, seq & 0xff);
      buf.writeUInt32BE(seq >>> 0, 0);
      seq++;
      h.update(buf);
      sent += n;
      ws.send(buf, { binary: true }, (err) => { if (!err) pump(); });
    }
    if (!done && sent >= total) {
      done = true;
      const digest = h.digest('hex');
      emit({ ev: 'flood_done', conn: ws._conn, bytes: total, sha256: digest });
      ws.send(`__flood_done__ ${total} ${digest}`);
    }
  };
  pump();
}

function onWebSocket(ws, req, conn, rec) {
  ws._conn = conn;
  stats.open_ws++;
  stats.ws_total++;
  if (stats.open_ws > stats.max_open_ws) stats.max_open_ws = stats.open_ws;
  const q = new URL(req.url, 'http://backend').searchParams;
  const rate = +(q.get('rate') || 0);
  const sink = q.get('sink') === '1';
  const st = { rx_bytes: 0, rx_msgs: 0, hash: crypto.createHash('sha256'), pings: 0, pongs: 0, t0: Date.now() };
  emit({ ev: 'ws_open', conn, url: req.url, protocol: ws.protocol });

  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.length < 256 && data[0] === 0x5f && data[1] === 0x5f) {
      const text = data.toString('utf8');
      const parts = text.split(' ');
      switch (parts[0]) {
        case '__headers__': ws.send(JSON.stringify(rec)); return;
        case '__close__': ws.close(+parts[1], parts.slice(2).join(' ')); return;
        case '__pongs__': ws.send(JSON.stringify({ pings: st.pings, pongs: st.pongs })); return;
        case '__stats__':
          ws.send(JSON.stringify({ rx_bytes: st.rx_bytes, rx_msgs: st.rx_msgs,
                                   sha256: st.hash.copy().digest('hex') }));
          return;
        case '__flood__': flood(ws, +parts[1], +parts[2]); return;
        default: break;
      }
    }
    st.rx_bytes += data.length;
    st.rx_msgs++;
    st.hash.update(data);
    if (rate > 0) {
      // a slow reader: stop reading the socket until we are back under `rate`
      const due = st.t0 + (st.rx_bytes / rate) * 1000;
      const wait = due - Date.now();
      if (wait > 1) {
        ws.pause();
        setTimeout(() => ws.resume(), wait);
      }
    }
    if (!sink) ws.send(data, { binary: isBinary });
  });
  ws.on('ping', (d) => { st.pings++; emit({ ev: 'ping', conn, data: d.toString('latin1') }); });
  ws.on('pong', (d) => { st.pongs++; emit({ ev: 'pong', conn, data: d.toString('latin1') }); });
  ws.on('close', (code, why) => {
    stats.open_ws--;
    emit({ ev: 'ws_close', conn, code, reason: why.toString('utf8'),
           rx_bytes: st.rx_bytes, rx_msgs: st.rx_msgs });
  });
  ws.on('error', (e) => emit({ ev: 'ws_error', conn, error: String(e && e.message) }));
}

function startWs() {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false,
                                    maxPayload: 64 * 1024 * 1024 });
  const server = cfg.tls_cert
    ? https.createServer({ cert: fs.readFileSync(cfg.tls_cert), key: fs.readFileSync(cfg.tls_key) })
    : http.createServer();
  server.keepAliveTimeout = 30000;  // outlives any test: pooled proxy connections stay up
  server.headersTimeout = 31000;
  server.on(cfg.tls_cert ? 'secureConnection' : 'connection', tagSocket);
  server.on('request', onRequest);
  server.on('clientError', (err, sock) => {
    emit({ ev: 'client_error', conn: sock._tid, error: String(err && err.code),
           text: err && err.rawPacket ? err.rawPacket.toString('latin1').slice(0, 200) : '' });
    if (sock.writable) sock.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else sock.destroy();
  });
  server.on('upgrade', (req, socket, head) => {
    const conn = socket._tid;
    const rec = record(conn, req.method, req.url, req.httpVersion, pairs(req.rawHeaders), true, head.length);
    const path = new URL(req.url, 'http://backend').pathname;
    const token = String(req.headers.upgrade || '').toLowerCase();
    const m = /\/reject\/(\d{3})$/.exec(path);
    if (m) return rejectUpgrade(server, socket, conn, +m[1], head);
    if (/\/forge101$/.test(path)) return forge101(socket, conn, head);
    if (token !== 'websocket') return ignoreUpgrade(socket, conn, rec);
    wss.handleUpgrade(req, socket, head, (ws) => onWebSocket(ws, req, conn, rec));
  });
  server.listen(cfg.port || 0, '127.0.0.1', 1024, () => {
    emit({ ev: 'listening', port: server.address().port, mode }, true);
  });
}

// -------------------------------------------------------------- mode raw101

function parseHead(text) {
  const lines = text.split('\r\n');
  const [method, url, version] = lines[0].split(' ');
  const headers = [];
  for (const line of lines.slice(1)) {
    if (!line) continue;
    const i = line.indexOf(':');
    headers.push([line.slice(0, i), line.slice(i + 1).trim()]);
  }
  return { method, url, version: (version || '').replace('HTTP/', ''), headers };
}

function hget(headers, name) {
  const n = name.toLowerCase();
  const v = headers.filter(([k]) => k.toLowerCase() === n).map(([, x]) => x);
  return v.length ? v.join(', ') : undefined;
}

function startRaw101() {
  const token = cfg.token || 'websocket';
  const acceptMode = cfg.accept || 'valid';
  const server = net.createServer({ allowHalfOpen: true }, (sock) => {
    const conn = tagSocket(sock);
    let buf = Buffer.alloc(0);
    let state = 'head';
    sock.on('data', (d) => {
      if (state === 'tunnel') {
        emit({ ev: 'tunnel_bytes', conn, n: d.length });
        sock.write(d);
        return;
      }
      if (state !== 'head') {
        emit({ ev: 'late_bytes', conn, n: d.length, text: d.toString('latin1').slice(0, 200) });
        return;
      }
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const h = parseHead(buf.slice(0, end).toString('latin1'));
      const rest = buf.slice(end + 4);
      buf = Buffer.alloc(0);
      const wantsUpgrade = hget(h.headers, 'upgrade') !== undefined;
      const rec = record(conn, h.method, h.url, h.version, h.headers, wantsUpgrade, rest.length);
      if (h.url === '/_seen' || (cfg.only_if_upgrade && !wantsUpgrade)) {
        state = 'done';
        const body = Buffer.from(JSON.stringify(h.url === '/_seen' ? seen : Object.assign({ body_len: 0 }, rec)));
        sock.end(Buffer.concat([Buffer.from(
          'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n' +
          `Content-Length: ${body.length}\r\nX-Conn-Id: ${conn}\r\nConnection: close\r\n\r\n`), body]));
        return;
      }
      let accept = '';
      const key = hget(h.headers, 'sec-websocket-key');
      if (acceptMode === 'valid' && key) accept = `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n`;
      if (acceptMode === 'wrong') accept = `Sec-WebSocket-Accept: ${acceptFor('wrong-key')}\r\n`;
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${token}\r\nConnection: Upgrade\r\n${accept}\r\n`);
      state = 'tunnel';
      emit({ ev: 'upgraded', conn, token });
      if (rest.length) {
        emit({ ev: 'tunnel_bytes', conn, n: rest.length, early: true });
        sock.write(rest);
      }
    });
    sock.on('end', () => sock.end());
    sock.on('error', () => {});
  });
  server.listen(cfg.port || 0, '127.0.0.1', 1024, () => {
    emit({ ev: 'listening', port: server.address().port, mode }, true);
  });
}

if (mode === 'ws') startWs();
else if (mode === 'raw101') startRaw101();
else {
  process.stderr.write(`ws_backend.js: unknown mode ${mode}\n`);
  process.exit(2);
}
