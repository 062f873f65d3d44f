#!/usr/bin/env python3
"""Checks the gateway simulator (sim.py) against CMPP clients written by others: PyPI's `pycmpp`
2.0.2 (CMPP 2.0) and `cmppy` 0.3 (CMPP 3.0). Login (good and bad secret), submit and status report
round trips, a long Chinese message split by the client and reassembled by the simulator, flow
control. Where a client has no parser (neither decodes CMPP_DELIVER), and for SMGP 3.0 and SGIP 1.2,
which no registry has a client for, the test writes and reads the bytes at the offsets the protocol
documents give, written out here apart from the simulator's tables.

Their known quirks, which the tests work with rather than around: pycmpp announces version 0x21
while speaking the 2.0 layout, sends an empty Src_Id and Service_Id, has no DELIVER handler, and
answers ACTIVE_TEST with a length field that does not match its body (so the simulator's heartbeat
is left off here); cmppy is 3.0 only, encodes UCS-2 whatever Msg_Fmt says, and reads a response as
4 + Total_Length octets (so each of its reads must find one PDU waiting).

Run: python3 tests/gateways/check_sim.py  (installs the two clients into tests/gateways/.pylib
when missing, as tests/it/gateways.rs does before running it).
"""
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PYLIB = os.path.join(HERE, ".pylib")


def ensure_clients():
    """Installs the pinned clients (requirements.txt) into .pylib when missing: into a private
    directory first, renamed into place, so two runs at once never see half an install."""
    if os.path.exists(os.path.join(PYLIB, "pycmpp")) and os.path.exists(os.path.join(PYLIB, "cmppy")):
        return
    tmp = f"{PYLIB}.install-{os.getpid()}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-deps", "--target", tmp, "-r", os.path.join(HERE, "requirements.txt")], check=True)
    try:
        os.rename(tmp, PYLIB)
    except OSError:
        subprocess.run(["rm", "-rf", tmp], check=False)  # another run got there first


ensure_clients()
sys.path.insert(0, PYLIB)
from pycmpp.cmpp import Cmpp  # noqa: E402
from pycmpp.request import ConnectRequestInstance, SubmitRequestInstance  # noqa: E402
from pycmpp.response import ConnectResponseInstance, SubmitResponseInstance  # noqa: E402
import cmppy  # noqa: E402
from cmppy.request import ConnectReq, SubmitReq, TerminateReq  # noqa: E402
from cmppy.response import parse_response  # noqa: E402

cmppy._log = lambda _msg: None  # cmppy prints every PDU it writes and reads

SP, SECRET = "901234", "s3cret"
CHINESE_200 = "".join("尊敬的客户您好余额不足请及时充值"[i % 16] for i in range(200))


class Sim:
    def __init__(self, protocol, *args):
        self.log = tempfile.NamedTemporaryFile(prefix=f"gw-{protocol}-", suffix=".jsonl", delete=False).name
        self.argv = [sys.executable, os.path.join(HERE, "sim.py"), "--protocol", protocol, "--log", self.log,
                     "--account", SP, "--secret", SECRET, *args]
        self.start("0")

    def start(self, port):
        self.proc = subprocess.Popen(self.argv + ["--port", port], stdout=subprocess.PIPE, text=True)
        words = self.proc.stdout.readline().split()
        self.port, self.control_port = int(words[1]), int(words[3])

    def restart_after_sigkill(self):
        """SIGKILL, then a new process on the same port and log, as a gateway restarted."""
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.start(str(self.port))

    def control(self, **cmd):
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as c:
            c.sendall((json.dumps(cmd) + "\n").encode())
            return json.loads(c.makefile().readline())

    def lines(self):
        with open(self.log, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        os.unlink(self.log)


def read_pdu(sock):
    """One CMPP PDU: (command id, sequence id, body)."""
    head = recv_exactly(sock, 12)
    length, cid, seq = struct.unpack(">III", head)
    return cid, seq, recv_exactly(sock, length - 12)


def recv_exactly(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("the simulator closed the connection")
        out += chunk
    return out


def connect(sim):
    s = socket.create_connection(("127.0.0.1", sim.port), timeout=5)
    return s


class Pycmpp20(unittest.TestCase):
    """pycmpp speaks CMPP 2.0 (announcing 0x21)."""

    def setUp(self):
        self.sim = Sim("cmpp2")

    def tearDown(self):
        self.sim.close()

    def login(self, secret):
        s = connect(self.sim)
        req = ConnectRequestInstance()
        s.sendall(req.create(SP, secret))
        cid, seq, body = read_pdu(s)
        self.assertEqual(cid, 0x80000001)
        resp = ConnectResponseInstance()
        resp.resolve(struct.pack(">III", 12 + len(body), cid, seq) + body)
        return s, req, resp

    def test_login_good_secret_and_authenticator_ismg(self):
        s, req, resp = self.login(SECRET)
        self.assertEqual(resp.status, 0)
        # AuthenticatorISMG = MD5(Status (1 octet in 2.0) + AuthenticatorSource + secret)
        self.assertEqual(resp.authenticator_ISMG, hashlib.md5(b"\0" + req.auth_source + SECRET.encode()).digest())
        self.assertEqual(resp.version, 0x20)
        s.close()

    def test_login_bad_secret_is_refused_with_status_3(self):
        s, _, resp = self.login("wrong")
        self.assertEqual(resp.status, 3)  # 认证错 (authentication failed)
        self.assertEqual(s.recv(1), b"", "the simulator keeps a refused connection open")
        s.close()

    def test_submit_and_status_report_round_trip(self):
        s, _, _ = self.login(SECRET)
        s.sendall(SubmitRequestInstance().create(msg_src=SP, msg_content="您的话费余额不足", dest_terminal_id=["13800138000"],
                                                 registered_delivery=1))
        cid, seq, body = read_pdu(s)
        resp = SubmitResponseInstance()
        resp.resolve(struct.pack(">III", 12 + len(body), cid, seq) + body)
        self.assertEqual((cid, resp.status), (0x80000004, 0))
        # CMPP 2.0 DELIVER: Msg_Id 0-8, Dest_Id 8-29, Service_Id 29-39, TP_pid 39, TP_udhi 40,
        # Msg_Fmt 41, Src_terminal_Id 42-63, Registered_Delivery 63, Msg_Length 64, Msg_Content.
        cid, seq, body = read_pdu(s)
        self.assertEqual(cid, 0x00000005)
        self.assertEqual(body[63], 1, "Registered_Delivery 1: a status report")
        self.assertEqual(body[64], 60, "a CMPP 2.0 status report is 60 octets")
        report = body[65:125]
        # Report: Msg_Id 0-8, Stat 8-15, Submit_time 15-25, Done_time 25-35, Dest_terminal_Id 35-56, SMSC_sequence 56-60
        self.assertEqual(struct.unpack(">Q", report[:8])[0], resp.msg_id)
        self.assertEqual(report[8:15], b"DELIVRD")
        self.assertEqual(report[35:56].rstrip(b"\0"), b"13800138000")
        self.assertEqual(len(body), 65 + 60 + 8, "Reserve: 8 octets")
        s.sendall(struct.pack(">IIIQB", 21, 0x80000005, seq, struct.unpack(">Q", body[:8])[0], 0))
        s.close()
        key = "%016x" % resp.msg_id
        self.wait(lambda ls: any(line.get("done") == key for line in ls), "the report acknowledged")
        msg = [line for line in self.sim.lines() if line.get("event") == "message"]
        self.assertEqual([(m["text"], m["dest"]) for m in msg], [("您的话费余额不足", "13800138000")])

    def test_long_chinese_message_split_by_pycmpp_is_reassembled(self):
        c = Cmpp("127.0.0.1", self.sim.port, SP, SECRET, "10690001", delivery=0, client_heartbeat=False)
        c.connect()
        c.auth()
        self.assertEqual(read_pdu(c.so)[0], 0x80000001)
        c.submit(CHINESE_200, ["13800138000"])
        results = [struct.unpack(">QB", read_pdu(c.so)[2])[1] for _ in range(4)]  # 200 = 64 + 64 + 64 + 8
        self.assertEqual(results, [0, 0, 0, 0])
        c.close()
        msg = [line for line in self.sim.lines() if line.get("event") == "message"]
        self.assertEqual(len(msg), 1)
        self.assertEqual((msg[0]["text"], msg[0]["parts"]), (CHINESE_200, 4))

    def test_flow_control_answers_result_8_then_takes_the_retry(self):
        s, _, _ = self.login(SECRET)
        self.sim.control(cmd="throttle", n=1)
        results = []
        for _ in range(2):
            s.sendall(SubmitRequestInstance().create(msg_src=SP, msg_content="hi", dest_terminal_id=["13800138000"]))
            results.append(read_pdu(s)[2][8])
        self.assertEqual(results, [8, 0])
        s.close()
        self.assertEqual(len([line for line in self.sim.lines() if line.get("event") == "message"]), 1)

    def test_an_owed_report_survives_a_sigkill_of_the_gateway(self):
        self.sim.restart_after_sigkill()  # restarting a fresh log is harmless
        self.sim.control(cmd="hold")
        s, _, _ = self.login(SECRET)
        s.sendall(SubmitRequestInstance().create(msg_src=SP, msg_content="hi", dest_terminal_id=["13800138000"],
                                                 registered_delivery=1))
        msg_id = struct.unpack(">Q", read_pdu(s)[2][:8])[0]
        s.close()
        self.sim.restart_after_sigkill()
        s, _, _ = self.login(SECRET)
        cid, seq, body = read_pdu(s)
        self.assertEqual((cid, struct.unpack(">Q", body[65:73])[0]), (0x00000005, msg_id))
        s.close()

    def wait(self, pred, what):
        import time
        for _ in range(500):
            if pred(self.sim.lines()):
                return
            time.sleep(0.01)
        self.fail(f"the simulator never logged {what}")


class Cmppy30(unittest.TestCase):
    """cmppy speaks CMPP 3.0."""

    def setUp(self):
        self.sim = Sim("cmpp3")

    def tearDown(self):
        self.sim.close()

    def test_request_logs_in_submits_and_terminates(self):
        res = cmppy.Cmppy("127.0.0.1", self.sim.port, SP, SECRET).request(
            SubmitReq(msg_src=SP, msg_content="hello", src_id="10690001", dest_terminal_id=["13800138000"]))
        self.assertEqual(res.result, 0)
        cmds = [(line["dir"], line["cmd"]) for line in self.sim.lines() if "cmd" in line]
        self.assertEqual(cmds, [("in", "connect"), ("out", "connect_resp"), ("in", "submit"), ("out", "submit_resp"),
                                ("in", "terminate"), ("out", "terminate_resp")])

    def test_bad_secret_is_refused(self):
        self.assertIsNone(cmppy.Cmppy("127.0.0.1", self.sim.port, SP, "wrong").request(
            SubmitReq(msg_src=SP, msg_content="hello", dest_terminal_id=["13800138000"])))
        resp = [line for line in self.sim.lines() if line.get("cmd") == "connect_resp"]
        self.assertEqual(resp[0]["status"], 3)

    def test_submit_and_status_report_round_trip(self):
        for dest, stat in [("13800138000", b"DELIVRD"), ("13900001234", b"UNDELIV")]:
            s = connect(self.sim)
            login = ConnectReq(SP, SECRET)
            s.sendall(login.message)
            cid, seq, body = read_pdu(s)
            res = parse_response(struct.pack(">III", 12 + len(body), cid, seq) + body)
            self.assertEqual(res.status, 0)
            # 3.0: the Status hashed into AuthenticatorISMG is its 4-octet wire form
            self.assertEqual(res.authenticator_ISMG,
                             hashlib.md5(res.raw_status + login.authenticator_source + SECRET.encode()).digest())
            s.sendall(SubmitReq(msg_src=SP, msg_content="您好", src_id="10690001", dest_terminal_id=[dest],
                                registered_delivery=1).message)
            cid, seq, body = read_pdu(s)
            res = parse_response(struct.pack(">III", 12 + len(body), cid, seq) + body)
            self.assertEqual(res.result, 0)
            # CMPP 3.0 DELIVER: Msg_Id 0-8, Dest_Id 8-29, Service_Id 29-39, TP_pid 39, TP_udhi 40, Msg_Fmt 41,
            # Src_terminal_Id 42-74, Src_terminal_type 74, Registered_Delivery 75, Msg_Length 76, Msg_Content
            cid, seq, body = read_pdu(s)
            self.assertEqual((cid, body[75], body[76]), (0x00000005, 1, 71), "a 71-octet 3.0 status report")
            report = body[77:148]
            self.assertEqual(struct.unpack(">Q", report[:8])[0], res.msg_id)
            self.assertEqual(report[8:15], stat)
            self.assertEqual(report[35:67].rstrip(b"\0"), dest.encode(), "Dest_terminal_Id: 32 octets in 3.0")
            self.assertEqual(body[8:29].rstrip(b"\0"), b"10690001")
            self.assertEqual(len(body), 77 + 71 + 20, "LinkID: 20 octets")
            s.sendall(struct.pack(">IIIQI", 24, 0x80000005, seq, struct.unpack(">Q", body[:8])[0], 0))
            s.sendall(TerminateReq().message)
            self.assertEqual(read_pdu(s)[0], 0x80000002)
            s.close()
        done = [line["done"] for line in self.sim.lines() if "done" in line]
        self.assertEqual(len(done), 2)


def md5(*parts):
    return hashlib.md5(b"".join(parts)).digest()


def pad(text, n):
    return text.encode().ljust(n, b"\0")


class Smgp30ByOffsets(unittest.TestCase):
    """SMGP 3.0 (China Telecom): no client on a registry, so the PDUs are written out here."""

    def setUp(self):
        self.sim = Sim("smgp")
        self.seq = 0

    def tearDown(self):
        self.sim.close()

    def send(self, s, request_id, body):
        self.seq += 1
        s.sendall(struct.pack(">III", 12 + len(body), request_id, self.seq) + body)

    def login(self, secret):
        s = connect(self.sim)
        ts = 1203083000
        auth = md5(SP.encode(), b"\0" * 7, secret.encode(), b"%010d" % ts)
        # Login: ClientID 0-8, AuthenticatorClient 8-24, LoginMode 24, TimeStamp 25-29, ClientVersion 29
        self.send(s, 0x00000001, pad(SP, 8) + auth + bytes([2]) + struct.pack(">I", ts) + bytes([0x30]))
        cid, _, body = read_pdu(s)
        self.assertEqual((cid, len(body)), (0x80000001, 21))
        status = struct.unpack(">I", body[:4])[0]
        # Login_Resp: Status 0-4, AuthenticatorServer 4-20 = MD5(Status + AuthenticatorClient + secret), Version 20
        self.assertEqual(body[4:20], md5(body[:4], auth, secret.encode() if status == 0 else SECRET.encode()))
        return s, status

    def test_login_good_and_bad_secret(self):
        s, status = self.login(SECRET)
        self.assertEqual(status, 0)
        s.close()
        s, status = self.login("wrong")
        self.assertEqual(status, 21)  # 认证错
        s.close()

    def test_long_message_with_tlvs_and_reports(self):
        s, _ = self.login(SECRET)
        text = CHINESE_200[:100].encode("utf-16-be")
        parts = [text[:134], text[134:]]
        ids = []
        for i, part in enumerate(parts):
            content = bytes([5, 0, 3, 0x42, 2, i + 1]) + part
            tlvs = b"".join(struct.pack(">HHB", tag, 1, v) for tag, v in [(0x0002, 1), (0x0009, 2), (0x000A, i + 1)])
            # Submit: MsgType 0, NeedReport 1, Priority 2, ServiceID 3-13, FeeType 13-15, FeeCode 15-21,
            # FixedFee 21-27, MsgFormat 27, ValidTime 28-45, AtTime 45-62, SrcTermID 62-83, ChargeTermID
            # 83-104, DestTermIDCount 104, DestTermID 105-126, MsgLength 126, MsgContent, Reserve 8, TLVs
            body = (bytes([6, 1, 1]) + pad("TIDINGS", 10) + pad("00", 2) + pad("000000", 6) + pad("000000", 6)
                    + bytes([8]) + bytes(17) + bytes(17) + pad("10690001", 21) + bytes(21) + bytes([1])
                    + pad("13300000001", 21) + bytes([len(content)]) + content + bytes(8) + tlvs)
            self.send(s, 0x00000002, body)
            cid, _, resp = read_pdu(s)
            # Submit_Resp: MsgID 0-10, Status 10-14
            self.assertEqual((cid, len(resp), struct.unpack(">I", resp[10:])[0]), (0x80000002, 14, 0))
            ids.append(resp[:10])
        for _ in parts:
            cid, seq, body = read_pdu(s)
            # Deliver: MsgID 0-10, IsReport 10, MsgFormat 11, RecvTime 12-26, SrcTermID 26-47, DestTermID 47-68,
            # MsgLength 68, MsgContent (the report: "id:" + 10-octet MsgID + " sub:..."), Reserve 8
            self.assertEqual((cid, body[10]), (0x00000003, 1))
            report = body[69:69 + body[68]]
            self.assertEqual(report[:3], b"id:")
            self.assertIn(report[3:13], ids)
            self.assertIn(b"stat:DELIVRD", report)
            self.assertEqual(body[26:47].rstrip(b"\0"), b"13300000001")
            self.send(s, 0x80000003, body[:10] + struct.pack(">I", 0))
            self.seq -= 1
        messages = [line for line in self.sim.lines() if line.get("event") == "message"]
        self.assertEqual([(m["text"], m["parts"]) for m in messages], [(CHINESE_200[:100], 2)])
        s.close()


class Sgip12ByOffsets(unittest.TestCase):
    """SGIP 1.2 (China Unicom): the SP binds to submit; the SMG binds back to the SP to deliver."""

    def setUp(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        sp = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.sim = Sim("sgip", "--sp", sp, "--sp-login", "smg", "--sp-password", "smgpw")

    def tearDown(self):
        self.sim.close()
        self.listener.close()

    @staticmethod
    def read(s):
        head = recv_exactly(s, 20)
        length, cid = struct.unpack(">II", head[:8])
        return cid, head[8:], recv_exactly(s, length - 20)

    @staticmethod
    def send(s, cid, seq, body):
        s.sendall(struct.pack(">II", 20 + len(body), cid) + seq + body)

    def bind(self, password):
        s = connect(self.sim)
        # Bind: Login Type 0, Login Name 1-17, Login Password 17-33, Reserve 33-41
        self.send(s, 0x00000001, struct.pack(">III", 3000099999, 1203083000, 1), bytes([1]) + pad(SP, 16)
                  + pad(password, 16) + bytes(8))
        cid, _, body = self.read(s)
        self.assertEqual((cid, len(body)), (0x80000001, 9))
        return s, body[0]

    def test_bind_good_and_bad_password(self):
        s, result = self.bind(SECRET)
        self.assertEqual(result, 0)
        s.close()
        s, result = self.bind("wrong")
        self.assertEqual(result, 1)  # 非法登录
        s.close()

    def test_submit_report_and_mo_come_back_over_the_smgs_own_connection(self):
        s, _ = self.bind(SECRET)
        seq = struct.pack(">III", 3000099999, 1203083000, 2)
        # Submit: SPNumber 0-21, ChargeNumber 21-42, UserCount 42, UserNumber 43-64, CorpId 64-69, ServiceType
        # 69-79, FeeType 79, FeeValue 80-86, GivenValue 86-92, AgentFlag 92, MorelatetoMTFlag 93, Priority 94,
        # ExpireTime 95-111, ScheduleTime 111-127, ReportFlag 127, TP_pid 128, TP_udhi 129, MessageCoding 130,
        # MessageType 131, MessageLength 132-136, MessageContent, Reserve 8
        content = "您好".encode("utf-16-be")
        body = (pad("10655001", 21) + pad("000000000000000000000", 21) + bytes([1]) + pad("8613000000001", 21)
                + pad("99999", 5) + pad("TIDINGS", 10) + bytes([0]) + pad("0", 6) + pad("0", 6) + bytes([0, 0, 0])
                + bytes(16) + bytes(16) + bytes([1, 0, 0, 8, 0]) + struct.pack(">I", len(content)) + content + bytes(8))
        self.assertEqual(len(body), 136 + len(content) + 8)
        self.send(s, 0x00000003, seq, body)
        cid, rseq, resp = self.read(s)
        self.assertEqual((cid, rseq, resp[0]), (0x80000003, seq, 0))
        self.send(s, 0x00000002, struct.pack(">III", 3000099999, 1203083000, 3), b"")
        self.assertEqual(self.read(s)[0], 0x80000002)
        s.close()
        self.sim.control(cmd="mo", **{"from": "8613000000001", "to": "10655001", "text": "退订"})
        got = {}
        while len(got) < 2:
            conn, _ = self.listener.accept()
            conn.settimeout(5)
            cid, bseq, bind = self.read(conn)
            self.assertEqual((cid, bind[0], bind[1:17].rstrip(b"\0"), bind[17:33].rstrip(b"\0")),
                             (0x00000001, 2, b"smg", b"smgpw"))
            self.send(conn, 0x80000001, bseq, bytes(9))
            while True:
                cid, dseq, body = self.read(conn)
                if cid == 0x00000002:
                    self.send(conn, 0x80000002, dseq, b"")
                    break
                got[cid] = body
                self.send(conn, cid | 0x80000000, dseq, bytes(9))
            conn.close()
        # Report: SubmitSequenceNumber 0-12, ReportType 12, UserNumber 13-34, State 34, ErrorCode 35, Reserve 8
        report = got[0x00000005]
        self.assertEqual((report[:12], report[12], report[13:34].rstrip(b"\0"), report[34]),
                         (seq, 0, b"8613000000001", 0))
        # Deliver: UserNumber 0-21, SPNumber 21-42, TP_pid 42, TP_udhi 43, MessageCoding 44, MessageLength 45-49
        mo = got[0x00000004]
        n = struct.unpack(">I", mo[45:49])[0]
        self.assertEqual((mo[:21].rstrip(b"\0"), mo[21:42].rstrip(b"\0"), mo[44]), (b"8613000000001", b"10655001", 8))
        self.assertEqual(mo[49:49 + n].decode("utf-16-be"), "退订")


if __name__ == "__main__":
    unittest.main(verbosity=2)
