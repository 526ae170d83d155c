#!/usr/bin/env node
// One POST with node's built-in `https` module (node's statically linked OpenSSL).
// usage: node https_client.js --url URL --body-file F --req-id ID --resp-size N [--cafile CA]
'use strict';
const fs = require('fs');
const https = require('https');
const crypto = require('crypto');

function args() {
  const a = {};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  return a;
}

const a = args();
const body = fs.readFileSync(a['body-file']);
const url = new URL(a.url);
const opts = {
  method: 'POST',
  hostname: url.hostname,
  port: url.port || 443,
  path: url.pathname,
  agent: false,
  headers: {
    'Content-Type': 'application/octet-stream',
    'Content-Length': body.length,
    'X-Req-Id': a['req-id'] || 'node',
    'X-Resp-Size': a['resp-size'] || '64',
    'Connection': 'close',
  },
};
if (a.cafile) opts.ca = fs.readFileSync(a.cafile);

const req = https.request(opts, (res) => {
  const parts = [];
  res.on('data', (d) => parts.push(d));
  res.on('end', () => {
    const data = Buffer.concat(parts);
    console.log(JSON.stringify({
      ok: true, status: res.statusCode, resp_len: data.length,
      resp_sha256: crypto.createHash('sha256').update(data).digest('hex'),
      body_sha256: res.headers['x-body-sha256'],
    }));
    process.exit(0);
  });
});
req.on('error', (e) => { console.error('https_client: ' + e.message); process.exit(1); });
req.end(body);
