#!/usr/bin/env node
// One chat.completions.create call with the official `openai` SDK.
// usage: node openai_client.js --prompt-file F --req-id ID --resp-size N [--base-url URL]
// The CA comes from NODE_EXTRA_CA_CERTS.
'use strict';
const fs = require('fs');
const OpenAI = require('openai');

function args() {
  const a = {};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  return a;
}

async function main() {
  const a = args();
  const prompt = fs.readFileSync(a['prompt-file'], 'utf8');
  const client = new OpenAI({
    apiKey: 'sk-lwt-test-key-not-a-secret',
    baseURL: a['base-url'] || 'https://api.openai.com/v1',
    maxRetries: 0,
    timeout: 60000,
    defaultHeaders: { 'X-Req-Id': a['req-id'] || 'sdk', 'X-Resp-Size': a['resp-size'] || '64' },
  });
  const r = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: prompt }],
  });
  const content = r.choices[0].message.content;
  console.log(JSON.stringify({ ok: true, id: r.id, object: r.object, content_len: content.length }));
  process.exit(0);
}

main().catch((e) => { console.error('openai_client: ' + (e && e.stack || e)); process.exit(1); });
