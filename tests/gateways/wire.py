"""The PDU layouts of CMPP 2.0 and 3.0, SMGP 3.0 and SGIP 1.2 as field tables, and one codec that
reads and writes any of them, for the simulator (sim.py). The tables are the protocol documents'
field tables transcribed (name, type, width), so a reader can hold them against the documents line
by line. The checks (check_sim.py) do not use them: they spell the same layouts out as offsets.

Field types: u8/u32/u64 big-endian integers; ("s", n) an n-octet string padded with NULs; ("b", n)
n raw octets; ("list", n, count) `count` strings of n octets, the count written in the field named
`count` before it; "msg8"/"msg32" octets behind a 1- or 4-octet length; "tlv" SMGP's optional
fields (tag u16, length u16, value) to the end of the body.
"""
import hashlib
import struct

U8, U32, U64 = "u8", "u32", "u64"


def s(n):
    return ("s", n)


def b(n):
    return ("b", n)


class BadPdu(Exception):
    pass


# ---- CMPP (China Mobile), header: Total_Length, Command_Id, Sequence_Id (12 octets)

CMPP_CONNECT = [("source_addr", s(6)), ("authenticator", b(16)), ("version", U8), ("timestamp", U32)]
CMPP_SUBMIT_HEAD = [("msg_id", U64), ("pk_total", U8), ("pk_number", U8), ("registered_delivery", U8),
                    ("msg_level", U8), ("service_id", s(10)), ("fee_usertype", U8)]
CMPP_SUBMIT_FEE = [("fee_type", s(2)), ("fee_code", s(6)), ("valid_time", s(17)), ("at_time", s(17)),
                   ("src_id", s(21)), ("dest_usr_tl", U8)]


def cmpp_tables(v3):
    term = 32 if v3 else 21
    status = U32 if v3 else U8
    submit = CMPP_SUBMIT_HEAD + [("fee_terminal_id", s(term))]
    submit += [("fee_terminal_type", U8)] if v3 else []
    submit += [("tp_pid", U8), ("tp_udhi", U8), ("msg_fmt", U8), ("msg_src", s(6))] + CMPP_SUBMIT_FEE
    submit += [("dest_terminal_id", ("list", term, "dest_usr_tl"))]
    submit += [("dest_terminal_type", U8)] if v3 else []
    submit += [("msg_content", "msg8"), ("link_id", s(20))] if v3 else [("msg_content", "msg8"), ("reserve", b(8))]
    deliver = [("msg_id", U64), ("dest_id", s(21)), ("service_id", s(10)), ("tp_pid", U8), ("tp_udhi", U8),
               ("msg_fmt", U8), ("src_terminal_id", s(term))]
    deliver += [("src_terminal_type", U8)] if v3 else []
    deliver += [("registered_delivery", U8), ("msg_content", "msg8")]
    deliver += [("link_id", s(20))] if v3 else [("reserve", b(8))]
    return {
        0x00000001: ("connect", CMPP_CONNECT),
        0x80000001: ("connect_resp", [("status", status), ("authenticator", b(16)), ("version", U8)]),
        0x00000002: ("terminate", []),
        0x80000002: ("terminate_resp", []),
        0x00000004: ("submit", submit),
        0x80000004: ("submit_resp", [("msg_id", U64), ("result", status)]),
        0x00000005: ("deliver", deliver),
        0x80000005: ("deliver_resp", [("msg_id", U64), ("result", status)]),
        0x00000008: ("active_test", []),
        0x80000008: ("active_test_resp", [("reserved", U8)]),
    }


def cmpp_report(v3):
    """The status report carried in a CMPP_DELIVER's Msg_Content (60 octets in 2.0, 71 in 3.0)."""
    return [("msg_id", U64), ("stat", s(7)), ("submit_time", s(10)), ("done_time", s(10)),
            ("dest_terminal_id", s(32 if v3 else 21)), ("smsc_sequence", U32)]


# ---- SMGP 3.0 (China Telecom), header: PacketLength, RequestID, SequenceID (12 octets)

SMGP = {
    0x00000001: ("login", [("client_id", s(8)), ("authenticator", b(16)), ("login_mode", U8),
                           ("timestamp", U32), ("version", U8)]),
    0x80000001: ("login_resp", [("status", U32), ("authenticator", b(16)), ("version", U8)]),
    0x00000002: ("submit", [("msg_type", U8), ("need_report", U8), ("priority", U8), ("service_id", s(10)),
                            ("fee_type", s(2)), ("fee_code", s(6)), ("fixed_fee", s(6)), ("msg_format", U8),
                            ("valid_time", s(17)), ("at_time", s(17)), ("src_term_id", s(21)),
                            ("charge_term_id", s(21)), ("dest_term_id_count", U8),
                            ("dest_term_id", ("list", 21, "dest_term_id_count")), ("msg_content", "msg8"),
                            ("reserve", b(8)), ("tlvs", "tlv")]),
    0x80000002: ("submit_resp", [("msg_id", b(10)), ("status", U32)]),
    0x00000003: ("deliver", [("msg_id", b(10)), ("is_report", U8), ("msg_format", U8), ("recv_time", s(14)),
                             ("src_term_id", s(21)), ("dest_term_id", s(21)), ("msg_content", "msg8"),
                             ("reserve", b(8)), ("tlvs", "tlv")]),
    0x80000003: ("deliver_resp", [("msg_id", b(10)), ("status", U32)]),
    0x00000004: ("active_test", []),
    0x80000004: ("active_test_resp", []),
    0x00000006: ("exit", []),
    0x80000006: ("exit_resp", []),
}
SMGP_TLV = {0x0001: "tp_pid", 0x0002: "tp_udhi", 0x0003: "link_id", 0x0009: "pk_total", 0x000A: "pk_number"}

# ---- SGIP 1.2 (China Unicom), header: Message Length, Command ID, Sequence Number (node id,
# MMDDHHMMSS, counter: 12 octets), 20 octets in all.

RESULT = [("result", U8), ("reserve", b(8))]
SGIP = {
    0x00000001: ("bind", [("login_type", U8), ("login_name", s(16)), ("login_password", s(16)), ("reserve", b(8))]),
    0x80000001: ("bind_resp", RESULT),
    0x00000002: ("unbind", []),
    0x80000002: ("unbind_resp", []),
    0x00000003: ("submit", [("sp_number", s(21)), ("charge_number", s(21)), ("user_count", U8),
                            ("user_number", ("list", 21, "user_count")), ("corp_id", s(5)), ("service_type", s(10)),
                            ("fee_type", U8), ("fee_value", s(6)), ("given_value", s(6)), ("agent_flag", U8),
                            ("morelateto_mt_flag", U8), ("priority", U8), ("expire_time", s(16)),
                            ("schedule_time", s(16)), ("report_flag", U8), ("tp_pid", U8), ("tp_udhi", U8),
                            ("message_coding", U8), ("message_type", U8), ("message_content", "msg32"),
                            ("reserve", b(8))]),
    0x80000003: ("submit_resp", RESULT),
    0x00000004: ("deliver", [("user_number", s(21)), ("sp_number", s(21)), ("tp_pid", U8), ("tp_udhi", U8),
                             ("message_coding", U8), ("message_content", "msg32"), ("reserve", b(8))]),
    0x80000004: ("deliver_resp", RESULT),
    0x00000005: ("report", [("submit_node", U32), ("submit_time", U32), ("submit_counter", U32),
                            ("report_type", U8), ("user_number", s(21)), ("state", U8), ("error_code", U8),
                            ("reserve", b(8))]),
    0x80000005: ("report_resp", RESULT),
}

INTS = {U8: ">B", U32: ">I", U64: ">Q"}


def encode_body(table, values):
    out = bytearray()
    counts = {k[2]: n for n, k in table if isinstance(k, tuple) and k[0] == "list"}
    for name, kind in table:
        v = values.get(name)
        if kind in INTS:
            if name in counts:  # a list's count is the list's length, never given apart
                v = len(values.get(counts[name]) or [])
            out += struct.pack(INTS[kind], v or 0)
        elif kind == "msg8" or kind == "msg32":
            v = v or b""
            out += struct.pack(">B" if kind == "msg8" else ">I", len(v)) + v
        elif kind == "tlv":
            for tag, value in (v or []):
                out += struct.pack(">HH", tag, len(value)) + value
        elif kind[0] == "s":
            raw = (v or "").encode("ascii")
            out += raw[: kind[1]].ljust(kind[1], b"\0")
        elif kind[0] == "b":
            out += (v or b"").ljust(kind[1], b"\0")[: kind[1]]
        elif kind[0] == "list":
            for item in v or []:
                out += item.encode("ascii")[: kind[1]].ljust(kind[1], b"\0")
    return bytes(out)


def decode_body(table, body):
    """The fields of `body` by `table`; BadPdu when it is too short for them."""
    out, pos = {}, 0

    def take(n):
        nonlocal pos
        if pos + n > len(body):
            raise BadPdu(f"body ends at {len(body)} octets, field needs {pos + n}")
        pos += n
        return body[pos - n: pos]

    for name, kind in table:
        if kind in INTS:
            out[name] = struct.unpack(INTS[kind], take(struct.calcsize(INTS[kind])))[0]
        elif kind == "msg8":
            out[name] = take(take(1)[0])
        elif kind == "msg32":
            out[name] = take(struct.unpack(">I", take(4))[0])
        elif kind == "tlv":
            tlvs = []
            while pos < len(body):
                tag, n = struct.unpack(">HH", take(4))
                tlvs.append((tag, take(n)))
            out[name] = tlvs
        elif kind[0] == "s":
            out[name] = take(kind[1]).split(b"\0", 1)[0].decode("latin-1")
        elif kind[0] == "b":
            out[name] = take(kind[1])
        elif kind[0] == "list":
            out[name] = [take(kind[1]).split(b"\0", 1)[0].decode("latin-1") for _ in range(out[kind[2]])]
    return out


def jsonable(values):
    """A decoded PDU as JSON: octets as hex, SMGP TLVs as {tag: hex}."""
    out = {}
    for k, v in values.items():
        if isinstance(v, (bytes, bytearray)):
            out[k] = v.hex()
        elif k == "tlvs":
            out[k] = {SMGP_TLV.get(t, f"0x{t:04x}"): val.hex() for t, val in v}
        else:
            out[k] = v
    return out


def md5(*parts):
    return hashlib.md5(b"".join(parts)).digest()


def login_authenticator(account, secret, timestamp, zeros):
    """MD5(account + `zeros` NULs + secret + MMDDHHMMSS): CMPP's AuthenticatorSource (9 NULs) and
    SMGP's AuthenticatorClient (7 NULs)."""
    return md5(account.encode(), b"\0" * zeros, secret.encode(), b"%010d" % timestamp)


def decode_text(fmt, udhi, content):
    """Text of a Msg_Content: the concatenation UDH (if any) split off. Returns (udh, text)."""
    udh = b""
    if udhi and content:
        n = content[0] + 1
        udh, content = content[:n], content[n:]
    if fmt == 8:
        text = content.decode("utf-16-be", errors="replace")
    elif fmt == 15:
        text = content.decode("gbk", errors="replace")
    else:
        text = content.decode("latin-1")
    return udh, text


def encode_text(text, fmt):
    return text.encode({8: "utf-16-be", 15: "gbk"}.get(fmt, "latin-1"))


def concat_ref(udh):
    """(reference, total, number) of a concatenation UDH (IE 0x00 or 0x08), or None."""
    i = 1
    while i + 1 < len(udh):
        iei, n = udh[i], udh[i + 1]
        ie = udh[i + 2: i + 2 + n]
        if iei == 0x00 and n == 3:
            return ie[0], ie[1], ie[2]
        if iei == 0x08 and n == 4:
            return (ie[0] << 8) | ie[1], ie[2], ie[3]
        i += 2 + n
    return None
