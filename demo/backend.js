// The demo's application server: the kind of node.js service people put
// behind a proxy. HTTP API on /api/*, a WebSocket chat on /ws (node `ws`).
// Usage: node demo/backend.js PORT
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 9000);
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/api/hello')) {
    const body = JSON.stringify({
      hello: 'from the backend',
      via: req.headers['x-forwarded-for'] || null,
      proto: req.headers['x-forwarded-proto'] || null,
      host: req.headers.host,
    });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});

const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    // Chat: every message goes to every connected client.
    for (const client of wss.clients) {
      if (client.readyState === 1) client.send(data, { binary: isBinary });
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`demo backend listening on 127.0.0.1:${port}`);
});
