// Runs N whatsapp-web.js clients, unmodified, in one Node process, as its
// users run a fleet of numbers, for tests/bench/bench_vs_wwebjs.py.
//
//   node fleet.js '{"port": P, "dataPath": DIR, "chrome": PATH}'
//
// JSON lines, as driver.js speaks them, each event naming its client:
//   on start                                          -> "up" {pid}
//   {"cmd": "create", "ids": [ID]}                    -> every client created and initialize()d at once;
//                                                        then "qr" {client, qr}, "authenticated" {client},
//                                                        "ready" {client, wid}, "init_error" {client, error}
//   {"cmd": "send", "client": ID, "ref": R, "chat_id": C, "text": T}
//                                                     -> "sent" {client, ref, id} or "send_failed" {client, ref, error}
//   {"cmd": "destroy"}                                -> every client destroyed, "destroyed", then exit
// Each inbound message is "message" {client, id, from, body}.
//
// No signal handler of its own: SIGTERM and SIGINT do what whatsapp-web.js
// and puppeteer do by default, which is what the benchmark measures
// (the processes left behind after a SIGTERM).  Each browser opens
// https://web.whatsapp.com/, mapped to the stand-in's TLS front on
// 127.0.0.1:P, as in driver.js.
'use strict';

const readline = require('readline');
const { Client, LocalAuth } = require('whatsapp-web.js');

const config = JSON.parse(process.argv[2] || '{}');
const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');

const args = [
  `--host-resolver-rules=MAP web.whatsapp.com 127.0.0.1:${config.port}`,
  '--ignore-certificate-errors',
];
if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');  // Chromium refuses root otherwise

const clients = new Map();  // id -> Client

function create(id) {
  if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(id) || clients.has(id)) {
    emit('init_error', { client: id, error: 'a client id is 1 to 64 of A-Z a-z 0-9 _ -, and new' });
    return;
  }
  const client = new Client({
    authStrategy: new LocalAuth({ dataPath: config.dataPath, clientId: id }),
    webVersionCache: { type: 'none' },
    // Ten launches at once on a busy machine may take longer than
    // puppeteer's 30 s; the benchmark bounds the wait itself.
    puppeteer: { executablePath: config.chrome || '/usr/bin/chromium', headless: true, args, timeout: 90000 },
  });
  clients.set(id, client);
  client.on('qr', (qr) => emit('qr', { client: id, qr }));
  client.on('authenticated', () => emit('authenticated', { client: id }));
  client.on('ready', () => emit('ready', { client: id, wid: client.info.wid._serialized }));
  client.on('message', (m) => emit('message', { client: id, id: m.id._serialized, from: m.from, body: m.body }));
  client.initialize().catch((e) => emit('init_error', { client: id, error: String(e && e.stack || e) }));
}

async function send(cmd) {
  const client = clients.get(cmd.client);
  try {
    if (!client) throw new Error('no client ' + JSON.stringify(cmd.client));
    const msg = await client.sendMessage(cmd.chat_id, cmd.text);
    emit('sent', { client: cmd.client, ref: cmd.ref, id: msg.id._serialized });
  } catch (e) {
    emit('send_failed', { client: cmd.client, ref: cmd.ref, error: String(e && e.stack || e) });
  }
}

let destroying = null;
function destroyAll() {
  destroying = destroying || Promise.allSettled([...clients.values()].map((c) => c.destroy())).then(() => {
    emit('destroyed');
    process.exit(0);
  });
  return destroying;
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let cmd;
  try { cmd = JSON.parse(line); } catch (e) { emit('error', { error: 'not JSON: ' + line.slice(0, 200) }); return; }
  if (cmd.cmd === 'create' && Array.isArray(cmd.ids)) cmd.ids.forEach(create);
  else if (cmd.cmd === 'send') send(cmd);
  else if (cmd.cmd === 'destroy') destroyAll();
  else emit('error', { error: 'unknown command ' + JSON.stringify(cmd.cmd) });
});
lines.on('close', destroyAll);  // the benchmark went away: take the browsers along

emit('up', { pid: process.pid });
