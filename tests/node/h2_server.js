#!/usr/bin/env node
// HTTP/2 (and HTTP/1.1 fallback) TLS test "provider" on node's built-in http2 module.
// Logs one JSON line per request to --log: {method, path, req_id, version, len, sha256, status}.
// usage: node h2_server.js --cert C --key K --port N --log FILE
'use strict';
const fs = require('fs');
const http2 = require('http2');
const crypto = require('crypto');

function args() {
  const a = {};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  return a;
}

const a = args();
const log = fs.openSync(a.log, 'a');
const server = http2.createSecureServer({
  cert: fs.readFileSync(a.cert),
  key: fs.readFileSync(a.key),
  allowHTTP1: true,
});
server.on('request', (req, res) => {
  const parts = [];
  req.on('data', (d) => parts.push(d));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    const rec = {
      method: req.method, path: req.url, req_id: req.headers['x-req-id'] || '',
      version: req.httpVersion, len: body.length,
      sha256: crypto.createHash('sha256').update(body).digest('hex'), status: 'ok',
    };
    fs.writeSync(log, JSON.stringify(rec) + '\n');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, len: body.length }));
  });
  req.on('error', () => {});
});
server.on('sessionError', () => {});
server.listen(Number(a.port || 8443), '0.0.0.0', () => console.log('listening'));
