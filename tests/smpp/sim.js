// SMSC simulator for the tidings SMPP integration tests, built on the npm package `smpp` so that
// our Rust codec is checked against an independent implementation of SMPP 3.4.
// Usage: node sim.js --port 0 --log pdus.jsonl [--system-id id --password pw] [--tps N] [--dlr-delay-ms 50]
//                    [--state receipts.jsonl] [--resp-delay-ms 0]
// --resp-delay-ms holds every submit_sm_resp back that long (a slow SMSC; the submit is logged
// when it arrives).
// With --state, receipts not yet acknowledged survive a restart of the simulator, as they survive
// a restart of a real SMSC: written before the submit is answered, delivered on the next bind.
// When --state is the --log file, a message and the receipt it is owed go out in one write, so a
// SIGKILL never leaves a message taken without its receipt (what a real SMSC's store guarantees).
// It prints `listening PORT control CPORT` once ready. The control port takes one JSON object a
// line and answers one:
//   {"cmd": "mo", "from": "13800138000", "to": "10658888", "text": "退订", "coding": 8}
//       a subscriber's message (deliver_sm, message type 0) to the bound ESME: coding 8 UCS-2
//       (the default), 0 or 1 the text's octets as they are; or "hex": "cdcbb6a9" with any
//       coding (15 GBK). "lose_ack": 1 takes the first deliver_sm_resp as lost: the message
//       stays unacknowledged and goes again on the next bind (a client killed before its answer
//       reached the wire). Like receipts, MO messages are kept (--state) until acknowledged.
//   {"cmd": "state"}   counts: bound sessions, queued, in flight
'use strict';
const smpp = require('smpp');
const fs = require('fs');
const net = require('net');

const opt = { port: '0', log: '', 'system-id': null, password: null, tps: '0', 'dlr-delay-ms': '50', state: '',
  'resp-delay-ms': '0' };
for (let i = 2; i + 1 < process.argv.length; i += 2) opt[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const logFd = opt.log ? fs.openSync(opt.log, 'a') : null;
const record = (obj) => logFd !== null && fs.writeSync(logFd, JSON.stringify(obj) + '\n'); // unbuffered
const plain = (v) => (Buffer.isBuffer(v) ? v.toString('hex') : v && v.udh ? { udh: v.udh.map((u) => u.toString('hex')), message: v.message } : v);
const describe = (dir, pdu) => {
  const o = { dir };
  for (const k of Object.keys(pdu)) if (typeof pdu[k] !== 'function') o[k] = plain(pdu[k]);
  return o;
};

let counter = 0;
const idBase = Date.now().toString(16);
const receivers = new Set(); // bound sessions that take deliver_sm
const queued = []; // receipts waiting for a bound session (store and forward)
const partial = new Map(); // "dest/ref" -> { total, parts: [] }
let second = 0, inSecond = 0;
const yymmddhhmm = (d) => d.toISOString().replace(/\D/g, '').slice(2, 12);

const stateFd = !opt.state ? null : opt.state === opt.log ? logFd : fs.openSync(opt.state, 'a+');
const persist = (obj) => stateFd !== null && fs.writeSync(stateFd, JSON.stringify(obj) + '\n');
if (opt.state) {
  const done = new Set(), adds = [];
  const mos = [];
  for (const line of fs.readFileSync(opt.state, 'utf8').split('\n').filter(Boolean)) {
    let o;
    try { o = JSON.parse(line); } catch { continue; }
    if (o.done) done.add(o.done); else if (o.add) adds.push(o.add); else if (o.mo) mos.push(o.mo);
  }
  for (const r of adds) if (!done.has(r.receipted_message_id)) queued.push({ ...r, short_message: Buffer.from(r.short_message, 'ascii') });
  for (const m of mos) if (!done.has(m.key)) queued.push({ ...m, short_message: Buffer.from(m.short_message, 'hex') });
}

// A receipt is known by the message it reports on, an MO message by its key.
const keyOf = (item) => item.key || item.receipted_message_id;

function deliver(item) {
  const session = receivers.values().next().value;
  if (!session) return queued.push(item);
  session.inflight.add(item);
  session.deliver_sm(item, (resp) => {
    if (item.lose_ack > 0) {
      // Taken as lost on the wire: still in flight, so it goes again once this session closes.
      item.lose_ack--;
      return record({ event: 'ack_lost', key: keyOf(item) });
    }
    session.inflight.delete(item);
    if (resp.command_status !== 0) return queued.push(item);
    persist({ done: keyOf(item) });
    if (item.key) record({ event: 'mo_acked', key: item.key });
  });
}

// A subscriber's message on request (see the control commands above).
let moCounter = 0;
function mo(c) {
  const coding = c.coding === undefined ? 8 : Number(c.coding);
  const text = String(c.text || '');
  const octets = c.hex !== undefined ? Buffer.from(String(c.hex), 'hex')
    : coding === 8 ? Buffer.from(text, 'utf16le').swap16() : Buffer.from(text, 'latin1');
  const item = { key: `mo-${idBase}-${++moCounter}`, source_addr: String(c.from), destination_addr: String(c.to),
    esm_class: 0, data_coding: coding, short_message: octets, lose_ack: Number(c.lose_ack || 0) };
  const kept = { ...item, short_message: octets.toString('hex'), lose_ack: 0 };
  if (stateFd !== null) persist({ mo: kept }); else record({ mo: kept });
  deliver(item);
  return item.key;
}

// The `message` line for a submit that completes a message, or null (a part still waiting): `src` is
// the number it goes out from (source_addr; the last part's for a long message).
function complete(pdu, id) {
  const sm = pdu.short_message || {};
  const text = typeof sm.message === 'string' ? sm.message : '';
  const ie = (sm.udh || []).find((u) => u[0] === 0x00 || u[0] === 0x08);
  if (!ie) return { event: 'message', dest: pdu.destination_addr, src: pdu.source_addr, text, parts: 1, message_ids: [id] };
  const [ref, total, seq] = ie[0] === 0x00 ? [ie[2], ie[3], ie[4]] : [ie.readUInt16BE(2), ie[4], ie[5]];
  const key = pdu.destination_addr + '/' + ref;
  const m = partial.get(key) || { total, parts: [] };
  m.parts[seq - 1] = { text, id };
  partial.set(key, m);
  if (m.parts.filter(Boolean).length < total) return null;
  partial.delete(key);
  return { event: 'message', dest: pdu.destination_addr, src: pdu.source_addr, text: m.parts.map((p) => p.text).join(''),
    parts: total, message_ids: m.parts.map((p) => p.id) };
}

// Sends a submit_sm_resp, after --resp-delay-ms.
function answer(session, resp) {
  const delay = Number(opt['resp-delay-ms']);
  if (delay > 0) setTimeout(() => session.send(resp), delay); else session.send(resp);
}

function onSubmit(session, pdu) {
  const dest = pdu.destination_addr;
  const now = Date.now(), sec = Math.floor(now / 1000);
  if (sec !== second) [second, inSecond] = [sec, 0];
  const tps = Number(opt.tps);
  if (dest.startsWith('1391111') || (tps > 0 && inSecond >= tps)) {
    return answer(session, pdu.response({ command_status: smpp.ESME_RTHROTTLED }));
  }
  inSecond++;
  const id = idBase + (++counter).toString(16);
  // Logged before the response goes out, so a client that got it finds the line.
  const message = complete(pdu, id);
  if (!(pdu.registered_delivery & 1)) {
    if (message) record(message);
    return answer(session, pdu.response({ message_id: id }));
  }
  const failed = dest.startsWith('1390000');
  const stat = failed ? 'UNDELIV' : 'DELIVRD';
  const date = yymmddhhmm(new Date(now));
  const text = `id:${id} sub:001 dlvrd:${failed ? '000' : '001'} submit date:${date} done date:${date} ` +
    `stat:${stat} err:${failed ? '001' : '000'} text:`;
  const receipt = { source_addr: dest, destination_addr: pdu.source_addr, esm_class: 0x04, data_coding: 0,
    short_message: Buffer.from(text, 'ascii'), receipted_message_id: id, message_state: failed ? 5 : 2 };
  if (pdu.user_message_reference !== undefined) receipt.user_message_reference = pdu.user_message_reference;
  const add = { add: { ...receipt, short_message: text } };
  if (stateFd !== null && stateFd === logFd) {
    fs.writeSync(logFd, (message ? JSON.stringify(message) + '\n' : '') + JSON.stringify(add) + '\n');
  } else {
    if (message) record(message);
    persist(add);
  }
  answer(session, pdu.response({ message_id: id }));
  setTimeout(() => deliver(receipt), Number(opt['dlr-delay-ms']));
}

const server = smpp.createServer((session) => {
  session.inflight = new Set();
  session.on('pdu', (pdu) => record(describe('in', pdu)));
  session.on('send', (pdu) => record(describe('out', pdu)));
  session.on('error', () => {});
  session.on('close', () => {
    receivers.delete(session);
    for (const r of session.inflight) deliver(r); // unacknowledged receipts go to the next session
    session.inflight.clear();
  });
  const bind = (takesReceipts) => (pdu) => {
    const ok = (opt['system-id'] === null || pdu.system_id === opt['system-id']) &&
      (opt.password === null || pdu.password === opt.password);
    session.send(pdu.response(ok ? { system_id: 'SIM' } : { command_status: smpp.ESME_RBINDFAIL }));
    if (!ok || !takesReceipts) return;
    receivers.add(session);
    queued.splice(0).forEach(deliver);
  };
  session.on('bind_transceiver', bind(true));
  session.on('bind_receiver', bind(true));
  session.on('bind_transmitter', bind(false));
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    receivers.delete(session);
    session.send(pdu.response(), () => session.close());
  });
  session.on('submit_sm', (pdu) => onSubmit(session, pdu));
  session.on('unknown', (pdu) => session.send(pdu.response()));
});
const control = net.createServer((conn) => {
  let buf = '';
  conn.on('error', () => {});
  conn.on('data', (chunk) => {
    buf += chunk.toString('utf8');
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let answer;
      try {
        const c = JSON.parse(line);
        if (c.cmd === 'mo') answer = { ok: true, key: mo(c) };
        else if (c.cmd === 'state') {
          let inflight = 0;
          for (const s of receivers) inflight += s.inflight.size;
          answer = { ok: true, sessions: receivers.size, queued: queued.length, inflight };
        } else answer = { ok: false, error: `unknown command ${c.cmd}` };
      } catch (e) {
        answer = { ok: false, error: String(e) };
      }
      conn.write(JSON.stringify(answer) + '\n');
    }
  });
});
server.listen(Number(opt.port), '127.0.0.1', () => {
  control.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port} control ${control.address().port}`));
});
