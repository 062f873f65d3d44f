#!/usr/bin/env python3
"""A gateway simulator for the tidings tests: China Mobile's ISMG (CMPP 2.0 or 3.0), China
Telecom's SMGW (SMGP 3.0) or China Unicom's SMG (SGIP 1.2), one protocol per process. Like the SMPP
simulator (tests/smpp/sim.js) it is the other side of the wire, written apart from tidings' codec
(wire.py holds the field tables), and it keeps its word across a SIGKILL as a real gateway's store
does.

Usage: python3 sim.py --protocol cmpp2|cmpp3|smgp|sgip --log pdus.jsonl [--port 0]
         [--account ID --secret S] [--report-delay-ms 50] [--resp-delay-ms 0] [--tps N]
         [--throttle-status N] [--active-test-ms 0] [--idle-timeout-ms 0] [--hold-reports]
         [--sp HOST:PORT --sp-login NAME --sp-password PW] (SGIP: where the SMG delivers)
         [--sp-window 16] (SGIP: Deliver/Report awaiting the SP's response at once)
It prints `listening PORT control CPORT` once ready.

The log (JSON lines) holds every PDU in and out ({"dir": "in"|"out", "cmd": ..., fields}), a
`message` line for every complete (reassembled) message, and the reports and MO messages the
gateway owes ({"owe": item}) until the SP acknowledges them ({"done": key}). A submit's PDU line,
its message line and the report it is owed go out in one write before the submit is answered, so a
SIGKILL never leaves a message taken without its report; on start the simulator re-reads the log
and delivers what is still owed. An SGIP Deliver or Report owed keeps the sequence number it was
given when owed, however often it is sent. --resp-delay-ms holds each taken submit's answer back
(a slow gateway): killing either side meanwhile leaves submits the gateway has taken but never
answered.

Status reports: a destination starting 1390000 gets UNDELIV, 1390001 EXPIRED, 1390002 REJECTD,
any other DELIVRD. Flow control: beyond --tps submits a second, or for the next N submits after
the control command {"cmd": "throttle", "n": N}, the submit is answered with the protocol's
flow-control status (CMPP result 8) and not taken.

The control port takes one JSON object a line and answers one:
  {"cmd": "mo", "from": "13800138000", "to": "10690001", "text": "退订", "fmt": 8}
                               a subscriber's message to the SP (fmt 0 ASCII, 8 UCS-2, 15 GBK)
  {"cmd": "throttle", "n": 3}  flow control for the next 3 submits
  {"cmd": "lose_acks", "n": 1} drop the next deliver response, as if the SP died before sending
                               it: the item is owed again to the SP's next session
  {"cmd": "hold"} / {"cmd": "release"}   keep reports and MO back / send them
  {"cmd": "active_test"}       a heartbeat to every logged-in SP now
  {"cmd": "state"}             counts: sessions, owed, in flight
"""
import argparse
import asyncio
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402

STATS = {"1390000": ("UNDELIV", "001", 2), "1390001": ("EXPIRED", "002", 2), "1390002": ("REJECTD", "003", 2)}


def mmddhhmmss(t=None):
    return int(time.strftime("%m%d%H%M%S", time.localtime(t)))


def yymmddhhmm(t=None):
    return time.strftime("%y%m%d%H%M", time.localtime(t))


class Flavor:
    """What differs between the protocols: header, tables, command names, login, status codes."""

    def __init__(self, name, opt):
        self.name, self.opt = name, opt
        self.v3 = name == "cmpp3"
        if name.startswith("cmpp"):
            self.tables, self.header = wire.cmpp_tables(self.v3), 12
            self.throttle_status = 8
        elif name == "smgp":
            self.tables, self.header, self.throttle_status = wire.SMGP, 12, 1
        else:
            self.tables, self.header, self.throttle_status = wire.SGIP, 20, 11
        if opt.throttle_status is not None:
            self.throttle_status = opt.throttle_status
        self.ids = {cmd: cid for cid, (cmd, _) in self.tables.items()}

    # -- login: (status, response fields)
    def login(self, cmd, v):
        o = self.opt
        if self.name.startswith("cmpp"):
            major = v["version"] >> 4
            if o.account is not None and v["source_addr"] != o.account:
                status = 2
            elif o.secret is not None and v["authenticator"] != wire.login_authenticator(
                    v["source_addr"], o.secret, v["timestamp"], 9):
                status = 3
            elif major > (3 if self.v3 else 2):
                status = 4
            elif major < (3 if self.v3 else 2):
                status = 5
            else:
                status = 0
            wire_status = struct.pack(">I" if self.v3 else ">B", status)
            auth = wire.md5(wire_status, v["authenticator"], (o.secret or "").encode())
            return status, {"status": status, "authenticator": auth, "version": 0x30 if self.v3 else 0x20}
        if self.name == "smgp":
            ok = (o.account is None or v["client_id"] == o.account) and (o.secret is None or v["authenticator"] == (
                wire.login_authenticator(v["client_id"], o.secret, v["timestamp"], 7)))
            status = 0 if ok else 21
            auth = wire.md5(struct.pack(">I", status), v["authenticator"], (o.secret or "").encode())
            return status, {"status": status, "authenticator": auth, "version": 0x30}
        ok = (o.account is None or v["login_name"] == o.account) and (
            o.secret is None or v["login_password"] == o.secret) and v["login_type"] == 1
        return (0, {"result": 0}) if ok else (1, {"result": 1})

    # -- a submit's substance: destinations, format, UDHI flag, content, wants a report
    def submit(self, v):
        if self.name.startswith("cmpp"):
            return (v["dest_terminal_id"], v["msg_fmt"], v["tp_udhi"], v["msg_content"], v["registered_delivery"] == 1,
                    v["src_id"])
        if self.name == "smgp":
            tlv = dict(v["tlvs"])
            udhi = tlv.get(0x0002, b"\0")[:1] == b"\1"
            return v["dest_term_id"], v["msg_format"], udhi, v["msg_content"], v["need_report"] == 1, v["src_term_id"]
        return (v["user_number"], v["message_coding"], v["tp_udhi"], v["message_content"], v["report_flag"] in (0, 1),
                v["sp_number"])

    def submit_resp(self, msg_id, status):
        if self.name.startswith("cmpp"):
            return {"msg_id": msg_id, "result": status}
        if self.name == "smgp":
            return {"msg_id": msg_id, "status": status}
        return {"result": status}

    def new_id(self, counter, seq):
        """The gateway's id for a submit: CMPP's 64-bit Msg_Id (time, ISMG code, sequence), SMGP's
        10-octet BCD MsgID (SMGW code, MMDDHHMM, sequence), SGIP's submit sequence number."""
        t = time.localtime()
        if self.name.startswith("cmpp"):
            return (t.tm_mon << 60 | t.tm_mday << 55 | t.tm_hour << 50 | t.tm_min << 44 | t.tm_sec << 38
                    | 1234 << 16 | counter & 0xFFFF)
        if self.name == "smgp":
            return bytes.fromhex("%06d%s%06d" % (591000, time.strftime("%m%d%H%M", t), counter % 1000000))
        return seq

    def key(self, msg_id):
        if isinstance(msg_id, int):
            return "%016x" % msg_id
        if isinstance(msg_id, tuple):
            return "%08x%08x%08x" % msg_id
        return msg_id.hex()

    # -- what the gateway delivers: a status report or an MO message, as (command, fields)
    def deliver(self, item):
        fmt = item.get("fmt", 0)
        if item["kind"] == "mo":
            content = bytes.fromhex(item["content"])
            udhi = 1 if item.get("udh") else 0
            n = int(item["key"].split("-")[1])
            if self.name.startswith("cmpp"):
                return "deliver", {"msg_id": n, "dest_id": item["to"], "service_id": "",
                                   "tp_udhi": udhi, "msg_fmt": fmt, "src_terminal_id": item["from"],
                                   "registered_delivery": 0, "msg_content": content}
            if self.name == "smgp":
                tlvs = [(0x0002, bytes([udhi]))] if udhi else []
                msg_id = bytes.fromhex("%06d%s%06d" % (591000, time.strftime("%m%d%H%M"), n % 1000000))
                return "deliver", {"msg_id": msg_id, "is_report": 0, "msg_format": fmt,
                                   "recv_time": time.strftime("%Y%m%d%H%M%S"), "src_term_id": item["from"],
                                   "dest_term_id": item["to"], "msg_content": content, "tlvs": tlvs}
            return "deliver", {"user_number": item["from"], "sp_number": item["to"], "tp_udhi": udhi,
                               "message_coding": fmt, "message_content": content}
        stat, err, state = item["stat"], item["err"], item["state"]
        if self.name.startswith("cmpp"):
            report = wire.encode_body(wire.cmpp_report(self.v3), {
                "msg_id": int(item["id"], 16), "stat": stat, "submit_time": item["submit_time"],
                "done_time": yymmddhhmm(), "dest_terminal_id": item["dest"], "smsc_sequence": item["n"] & 0xFFFFFFFF})
            return "deliver", {"msg_id": (item["n"] << 16) & (2**64 - 1), "dest_id": item["src"], "service_id": "",
                               "msg_fmt": 0, "src_terminal_id": item["dest"], "registered_delivery": 1,
                               "msg_content": report}
        if self.name == "smgp":
            text = (b"id:" + bytes.fromhex(item["id"]) + b" sub:001 dlvrd:%s submit date:%s done date:%s stat:%s err:%s"
                    b" text:" % (b"001" if state == 0 else b"000", item["submit_time"].encode(), yymmddhhmm().encode(),
                                 stat.encode(), err.encode())) + bytes(20)
            return "deliver", {"msg_id": bytes(10), "is_report": 1, "msg_format": 0,
                               "recv_time": time.strftime("%Y%m%d%H%M%S"), "src_term_id": item["dest"],
                               "dest_term_id": item["src"], "msg_content": text}
        node, t, counter = (int(item["id"][i:i + 8], 16) for i in (0, 8, 16))
        return "report", {"submit_node": node, "submit_time": t, "submit_counter": counter, "report_type": 0,
                          "user_number": item["dest"], "state": state, "error_code": int(err)}

    def resp_ok(self, v):
        return v.get("result", v.get("status", 1)) == 0


class Sim:
    def __init__(self, opt):
        self.opt = opt
        self.flavor = Flavor(opt.protocol, opt)
        self.fd = os.open(opt.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.sessions = []  # logged-in SP sessions that take delivers (CMPP, SMGP)
        self.queue = []  # owed items ready to go
        self.inflight = {}  # (session id, seq) -> item
        self.partial = {}  # (dest, ref) -> {total, parts}
        self.held = opt.hold_reports
        self.throttle_next = 0
        self.lose_acks = 0
        self.second, self.in_second = 0, 0
        self.counter = 0
        self.seq = 0
        self.wake = asyncio.Event()
        self.recover()

    # -- the log
    def write(self, *objs):
        data = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs).encode()
        os.write(self.fd, data)  # one write: all of it or (SIGKILL before) none

    def pdu_line(self, direction, cmd, seq, values):
        line = {"dir": direction, "cmd": cmd, "seq": list(seq) if isinstance(seq, tuple) else seq}
        line.update(wire.jsonable(values))
        if isinstance(values.get("msg_id"), int):
            line["msg_id"] = "%016x" % values["msg_id"]
        return line

    def recover(self):
        owed, done, lines = {}, set(), 0
        with open(self.opt.log, encoding="utf-8") as f:
            for line in f:
                lines += 1
                try:
                    o = json.loads(line)
                except ValueError:
                    continue
                if "owe" in o:
                    owed[o["owe"]["key"]] = o["owe"]
                elif "done" in o:
                    done.add(o["done"])
        self.counter = lines
        self.queue = [item for k, item in owed.items() if k not in done]

    def smg_seq(self):
        """SGIP: the sequence number an owed Deliver or Report goes with, fixed when it is owed
        (and logged with it), so that one sent again — on a new connection, after a restart —
        is the same PDU with the same number, as an SMG resends it."""
        return {"seq": list(self.next_seq())} if self.flavor.name == "sgip" else {}

    def next_seq(self):
        self.seq = (self.seq + 1) & 0x7FFFFFFF
        if self.flavor.header == 20:
            return (self.opt.node_id, mmddhhmmss(), self.seq)
        return self.seq

    # -- framing
    async def read_pdu(self, reader):
        head = await reader.readexactly(self.flavor.header)
        length, cid = struct.unpack(">II", head[:8])
        if not self.flavor.header <= length <= 65536:
            raise wire.BadPdu(f"length {length} out of range")
        body = await reader.readexactly(length - self.flavor.header)
        seq = struct.unpack(">III", head[8:]) if self.flavor.header == 20 else struct.unpack(">I", head[8:])[0]
        if cid not in self.flavor.tables:
            raise wire.BadPdu(f"unknown command 0x{cid:08x}")
        cmd, table = self.flavor.tables[cid]
        return cmd, seq, wire.decode_body(table, body)

    def frame(self, cmd, seq, values):
        cid = self.flavor.ids[cmd]
        body = wire.encode_body(self.flavor.tables[cid][1], values)
        seq_octets = struct.pack(">III", *seq) if isinstance(seq, tuple) else struct.pack(">I", seq)
        return struct.pack(">II", self.flavor.header + len(body), cid) + seq_octets + body

    def send(self, writer, cmd, seq, values, also=()):
        self.write(self.pdu_line("out", cmd, seq, values), *also)
        writer.write(self.frame(cmd, seq, values))

    # -- submits
    def flow_controlled(self):
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return True
        now = int(time.time())
        if now != self.second:
            self.second, self.in_second = now, 0
        if self.opt.tps and self.in_second >= self.opt.tps:
            return True
        self.in_second += 1
        return False

    def on_submit(self, writer, seq, v):
        inline = self.pdu_line("in", "submit", seq, v)
        if self.flow_controlled():
            self.write(inline)
            self.send(writer, "submit_resp", seq, self.flavor.submit_resp(0 if self.flavor.name != "smgp" else bytes(10),
                                                                           self.flavor.throttle_status))
            return
        dests, fmt, udhi, content, wants_report, src = self.flavor.submit(v)
        self.counter += 1
        msg_id = self.flavor.new_id(self.counter, seq)
        key = self.flavor.key(msg_id)
        udh, text = wire.decode_text(fmt, udhi, content)
        lines, owed = [inline], []
        for dest in dests:
            message = self.complete(dest, src, udh, text, key, fmt)
            if message:
                lines.append(message)
            stat, err, state = STATS.get(dest[-11:][:7], ("DELIVRD", "000", 0))
            if wants_report and (v.get("report_flag") != 0 or state != 0):
                item = {"key": key if len(dests) == 1 else f"{key}/{dest}", "kind": "report", "id": key,
                        "dest": dest, "src": src, "stat": stat, "err": err, "state": state,
                        "submit_time": yymmddhhmm(), "n": self.counter, **self.smg_seq()}
                owed.append(item)
                lines.append({"owe": item})
        self.write(*lines)
        resp = self.flavor.submit_resp(msg_id if self.flavor.name != "sgip" else 0, 0)
        if self.opt.resp_delay_ms:
            asyncio.get_running_loop().call_later(self.opt.resp_delay_ms / 1000, self.answer_late, writer, seq, resp)
        else:
            self.send(writer, "submit_resp", seq, resp)
        for item in owed:
            asyncio.get_running_loop().call_later(self.opt.report_delay_ms / 1000, self.owe, item)

    def answer_late(self, writer, seq, resp):
        if not writer.is_closing():
            self.send(writer, "submit_resp", seq, resp)

    def complete(self, dest, src, udh, text, key, fmt):
        """The `message` line for a part that completes a message, else None (parts still missing)."""
        ref = wire.concat_ref(udh) if udh else None
        if ref is None:
            return {"event": "message", "dest": dest, "src": src, "text": text, "fmt": fmt, "parts": 1, "ids": [key]}
        r, total, number = ref
        m = self.partial.setdefault((dest, r), {"total": total, "parts": {}})
        m["parts"][number] = (text, key)
        if len(m["parts"]) < total:
            return None
        del self.partial[(dest, r)]
        parts = [m["parts"][i] for i in sorted(m["parts"])]
        return {"event": "message", "dest": dest, "src": src, "text": "".join(p[0] for p in parts), "fmt": fmt,
                "parts": total, "ids": [p[1] for p in parts]}

    # -- what the gateway owes
    def owe(self, item):
        self.queue.append(item)
        self.wake.set()

    def pump(self):
        """Sends owed items to a logged-in session (CMPP, SMGP)."""
        if self.held or not self.sessions:
            return
        while self.queue:
            item = self.queue.pop(0)
            session = self.sessions[0]
            seq = self.next_seq()
            cmd, values = self.flavor.deliver(item)
            self.inflight[(id(session), seq)] = item
            self.send(session, cmd, seq, values)

    def on_deliver_resp(self, writer, seq, v):
        if self.lose_acks > 0:
            # As if the SP crashed before its answer left: the item stays in flight on this
            # session and is owed to the next one.
            self.lose_acks -= 1
            self.write({"event": "ack_lost", "seq": seq})
            return
        item = self.inflight.pop((id(writer), seq), None)
        if item is None:
            return
        if self.flavor.resp_ok(v):
            self.write({"done": item["key"]})
        else:
            self.owe(item)

    def mo(self, c):
        fmt = int(c.get("fmt", 0 if c["text"].isascii() else 8))
        encoded = wire.encode_text(c["text"], fmt)
        unit = 2 if fmt == 8 else 1
        chunks = [encoded] if len(encoded) <= 140 else [encoded[i:i + 134 - 134 % unit] for i in
                                                         range(0, len(encoded), 134 - 134 % unit)]
        ref = self.counter & 0xFF
        items = []
        for i, chunk in enumerate(chunks):
            self.counter += 1
            udh = bytes([5, 0, 3, ref, len(chunks), i + 1]) if len(chunks) > 1 else b""
            items.append({"key": f"mo-{self.counter}", "kind": "mo", "from": c["from"], "to": c["to"], "fmt": fmt,
                          "udh": udh.hex(), "content": (udh + chunk).hex(), **self.smg_seq()})
        self.write(*({"owe": item} for item in items))
        for item in items:
            self.owe(item)
        return [item["key"] for item in items]

    # -- an SP's session
    async def serve(self, reader, writer):
        logged_in = False
        last_heard = time.monotonic()
        beat = asyncio.create_task(self.heartbeat(writer, lambda: last_heard, lambda: logged_in))
        try:
            while True:
                timeout = self.opt.idle_timeout_ms / 1000 if self.opt.idle_timeout_ms else None
                try:
                    cmd, seq, v = await asyncio.wait_for(self.read_pdu(reader), timeout)
                except asyncio.TimeoutError:
                    self.write({"event": "idle_close"})
                    break
                last_heard = time.monotonic()
                if cmd in ("connect", "login", "bind"):
                    self.write(self.pdu_line("in", cmd, seq, v))
                    status, resp = self.flavor.login(cmd, v)
                    self.send(writer, cmd + "_resp", seq, resp)
                    if status != 0:
                        await writer.drain()
                        break
                    logged_in = True
                    if self.flavor.name != "sgip":
                        self.sessions.append(writer)
                        self.pump()
                elif not logged_in:
                    self.write(self.pdu_line("in", cmd, seq, v), {"event": "before_login"})
                    break
                elif cmd == "submit":
                    self.on_submit(writer, seq, v)
                elif cmd in ("deliver_resp", "report_resp"):
                    self.write(self.pdu_line("in", cmd, seq, v))
                    self.on_deliver_resp(writer, seq, v)
                elif cmd == "active_test":
                    self.write(self.pdu_line("in", cmd, seq, v))
                    self.send(writer, "active_test_resp", seq, {})
                elif cmd in ("terminate", "exit", "unbind"):
                    self.write(self.pdu_line("in", cmd, seq, v))
                    self.send(writer, cmd + "_resp", seq, {})
                    await writer.drain()
                    break
                else:
                    self.write(self.pdu_line("in", cmd, seq, v))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except wire.BadPdu as e:
            self.write({"dir": "in", "error": str(e)})
        finally:
            beat.cancel()
            self.close_session(writer)

    def close_session(self, writer):
        if writer in self.sessions:
            self.sessions.remove(writer)
        for k in [k for k in self.inflight if k[0] == id(writer)]:
            self.queue.append(self.inflight.pop(k))  # unacknowledged: owed to the next session
        writer.close()
        self.wake.set()

    async def heartbeat(self, writer, last_heard, logged_in):
        if not self.opt.active_test_ms or self.flavor.name == "sgip":
            return
        while True:
            await asyncio.sleep(self.opt.active_test_ms / 1000)
            if logged_in() and time.monotonic() - last_heard() >= self.opt.active_test_ms / 1000:
                self.send(writer, "active_test", self.next_seq(), {})

    async def deliverer(self):
        """Sends what is owed: to a logged-in session, or for SGIP over a connection of its own to
        the SP (Bind as the SMG, Deliver/Report, Unbind)."""
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.flavor.name != "sgip":
                self.pump()
                continue
            while self.queue and not self.held and self.opt.sp:
                try:
                    await self.deliver_sgip()
                except (OSError, asyncio.IncompleteReadError, wire.BadPdu) as e:
                    self.write({"event": "sp_unreachable", "error": str(e)})
                    await asyncio.sleep(0.2)

    async def deliver_sgip(self):
        """One connection of the SMG to the SP: Bind, then owed items with up to --sp-window of
        them awaiting their response at once (a real SMG's sliding window: one left unanswered
        holds its place, the others go on), Unbind when none is left. Items unanswered when the
        connection fails are owed again."""
        host, port = self.opt.sp.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        inflight = {}  # sequence -> item
        answers = None

        async def take_answers():
            while True:
                rcmd, rseq, rv = await self.read_pdu(reader)
                self.write(self.pdu_line("in", rcmd, rseq, rv))
                if rcmd == "unbind":  # the SP says goodbye: what it has not answered stays owed
                    self.send(writer, "unbind_resp", rseq, {})
                    await writer.drain()
                    raise ConnectionError("the SP unbound")
                if self.lose_acks > 0 and rseq in inflight:
                    # As if the SP died before answering: it stays in flight, owed again when
                    # this connection ends.
                    self.lose_acks -= 1
                    self.write({"event": "ack_lost", "seq": list(rseq)})
                    continue
                item = inflight.pop(rseq, None)
                if item is not None and self.flavor.resp_ok(rv):
                    self.write({"done": item["key"]})
                elif item is not None:
                    self.queue.append(item)
                self.wake.set()

        try:
            self.send(writer, "bind", self.next_seq(), {"login_type": 2, "login_name": self.opt.sp_login or "",
                                                        "login_password": self.opt.sp_password or ""})
            cmd, seq, v = await self.read_pdu(reader)
            self.write(self.pdu_line("in", cmd, seq, v))
            if cmd != "bind_resp" or v["result"] != 0:
                raise wire.BadPdu(f"the SP refused the bind: {v}")
            answers = asyncio.create_task(take_answers())
            while inflight or (self.queue and not self.held):
                while self.queue and not self.held and len(inflight) < self.opt.sp_window:
                    item = self.queue.pop(0)
                    cmd, values = self.flavor.deliver(item)
                    seq = tuple(item["seq"])
                    inflight[seq] = item
                    self.send(writer, cmd, seq, values)
                await writer.drain()
                if self.queue and not self.held and len(inflight) < self.opt.sp_window:
                    continue
                # Wait for an answer or a new item owed (both set wake), or the connection failing.
                self.wake.clear()
                woken = asyncio.create_task(self.wake.wait())
                await asyncio.wait({answers, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                if answers.done():
                    answers.result()  # raises what ended it
            self.send(writer, "unbind", self.next_seq(), {})
            await writer.drain()
        except BaseException:
            self.queue[:0] = list(inflight.values())
            raise
        finally:
            if answers is not None:
                answers.cancel()
            writer.close()

    # -- control
    async def control(self, reader, writer):
        while line := await reader.readline():
            try:
                c = json.loads(line)
                answer = self.command(c)
            except (ValueError, KeyError) as e:
                answer = {"ok": False, "error": str(e)}
            writer.write((json.dumps(answer, ensure_ascii=False) + "\n").encode())
            await writer.drain()
        writer.close()

    def command(self, c):
        cmd = c["cmd"]
        if cmd == "mo":
            return {"ok": True, "keys": self.mo(c)}
        if cmd == "throttle":
            self.throttle_next = int(c["n"])
        elif cmd == "lose_acks":
            self.lose_acks = int(c["n"])
        elif cmd == "hold":
            self.held = True
        elif cmd == "release":
            self.held = False
            self.wake.set()
        elif cmd == "active_test":
            for w in self.sessions:
                self.send(w, "active_test", self.next_seq(), {})
        elif cmd != "state":
            return {"ok": False, "error": f"unknown command {cmd}"}
        return {"ok": True, "sessions": len(self.sessions), "owed": len(self.queue), "inflight": len(self.inflight)}


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--protocol", required=True, choices=["cmpp2", "cmpp3", "smgp", "sgip"])
    p.add_argument("--log", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    p.add_argument("--account")
    p.add_argument("--secret")
    p.add_argument("--report-delay-ms", type=int, default=50)
    p.add_argument("--resp-delay-ms", type=int, default=0)
    p.add_argument("--tps", type=int, default=0)
    p.add_argument("--throttle-status", type=int)
    p.add_argument("--active-test-ms", type=int, default=0)
    p.add_argument("--idle-timeout-ms", type=int, default=0)
    p.add_argument("--hold-reports", action="store_true")
    p.add_argument("--node-id", type=int, default=3000012345)
    p.add_argument("--sp")
    p.add_argument("--sp-login")
    p.add_argument("--sp-password")
    p.add_argument("--sp-window", type=int, default=16)
    opt = p.parse_args()
    open(opt.log, "a").close()
    sim = Sim(opt)
    server = await asyncio.start_server(sim.serve, "127.0.0.1", opt.port)
    control = await asyncio.start_server(sim.control, "127.0.0.1", opt.control_port)
    port = server.sockets[0].getsockname()[1]
    cport = control.sockets[0].getsockname()[1]
    print(f"listening {port} control {cport}", flush=True)
    sim.wake.set()
    await sim.deliverer()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
