#!/usr/bin/env node
// POSTs over one HTTP/2 connection with node's built-in http2 module (node's OpenSSL).
// Each --body-file becomes one stream; all streams are opened at once, so their DATA
// frames interleave on the connection. Prints {"ok": true, "statuses": [...]}.
// usage: node h2_client.js --url URL --cafile CA --req-id ID [--gzip 1] --body-file F [--body-file F2 ...]
'use strict';
const fs = require('fs');
const http2 = require('http2');
const zlib = require('zlib');

const files = [];
const a = {};
const v = process.argv.slice(2);
for (let i = 0; i < v.length; i += 2) {
  const k = v[i].replace(/^--/, '');
  if (k === 'body-file') files.push(v[i + 1]);
  else a[k] = v[i + 1];
}
const url = new URL(a.url);
const client = http2.connect(url.origin, { ca: fs.readFileSync(a.cafile) });
client.on('error', (e) => {
  console.log(JSON.stringify({ ok: false, error: String(e) }));
  process.exit(1);
});
const statuses = [];
let left = files.length;
files.forEach((f, i) => {
  let body = fs.readFileSync(f);
  const headers = {
    ':method': 'POST', ':path': url.pathname, 'content-type': 'application/json',
    'x-req-id': `${a['req-id']}-${i}`, authorization: 'Bearer ' + (a.token || 'none'),
  };
  if (a.gzip === '1') {
    body = zlib.gzipSync(body);
    headers['content-encoding'] = 'gzip';
  }
  const req = client.request(headers);
  req.on('response', (h) => statuses.push(h[':status']));
  req.on('data', () => {});
  req.on('end', () => {
    if (--left === 0) {
      client.close();
      console.log(JSON.stringify({ ok: statuses.every((s) => s === 200), statuses }));
    }
  });
  // several writes: DATA spread over many frames
  for (let off = 0; off < body.length; off += 4096) req.write(body.subarray(off, off + 4096));
  req.end();
});
