#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/).

Run it again after changing it; the corpus is checked in, and the main
test suite runs every file in it (tests/fuzz_corpus.rs).
"""
import json, os, struct

HERE = os.path.dirname(os.path.abspath(__file__))
NONCE = "5HP9UiuK6M10r4EbSXEayX5keyC2DHR1Pb1LdQAKyalHL2AhDBCdHWFlCh56aJt1t9uJItnMavGreDpU2bVkw9xc"


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def mp(v):
    """A minimal MessagePack encoder for the seeds."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if 0 <= v < 2**64:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        return b"\xd9" + bytes([len(b)]) + b if len(b) < 256 else b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, list):
        h = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return h + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        h = bytes([0x80 | len(v)]) if len(v) < 16 else b"\xde" + struct.pack(">H", len(v))
        return h + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


def ber(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))


def frame(msg):
    body = mp(msg)
    return ber(len(body)) + body


def js(*msgs):
    return "".join(json.dumps(m, separators=(",", ":")) for m in msgs)


# ---- greeting
put("greeting", "09-server", "aemp;0;aemp-server;tls_md6_64_256,hmac_md6_64_256,tls_anon,cleartext;json,storable;provider=AE-0.9;peeraddr=127.0.0.1:52166;timeout=12\n" + NONCE + "\n")
put("greeting", "aemp", "aemp;0;n1;hmac_blake3_256,tls_md6_64_256,hmac_md6_64_256;msgpack,json;provider=aemp-0.1.0;timeout=12;aemp=1;incarnation=abc;tls=1.0\r\n" + NONCE + "\r\n")
put("greeting", "version", "aemp;0.0;n;a;b\naemp;1;n;a;b\naemp; 0 ;n;;;k;=v;k=w\n")
put("greeting", "odd", "aemp;0;x#y;a;b\naemp\n;;;;\naemp;0;;a;b\naemp;abc;n;a;b\n")
put("greeting", "nonce", "not base64!\n\n" + "A" * 2000 + "\n")

# ---- auth_line
put("auth_line", "hmac", "hmac_md6_64_256;cdfae27e2a7b68c8a03bfbd07a2432cf72b1b776014431c55a5f7b27a4adea16;json\n")
put("auth_line", "blake3", "hmac_blake3_256;" + "AB" * 32 + ";msgpack\r\n")
put("auth_line", "anon", "tls_anon;;json\n")
put("auth_line", "clear", "cleartext;616263;storable\n")
put("auth_line", "bad", "md5;xyz;json;extra\n;;\r\n")

# ---- json_stream (first byte: piece size and limits)
session = js(["", "AnyEvent::MP::_spawn", "COprXEuvxA9Jw8GcPOV5Aw=.b", "AnyEvent::MP::Global::connect", 0, "aemp-server"],
             ["", "mon1", "COprXEuvxA9Jw8GcPOV5Aw=.b"],
             ["COprXEuvxA9Jw8GcPOV5Aw=.b", "addr", ["127.0.0.1:40400"]],
             ["COprXEuvxA9Jw8GcPOV5Aw=.b", "set", {"echo": ["aemp-server#0hJrCIiX4OQ.a"]}])
put("json_stream", "session", b"\x07" + session.encode() + b"\n[]")
put("json_stream", "values", b"\x00" + '[null,true,false,0,-1,1.5,1e300,-0.0,18446744073709551615,99999999999999999999,"\\u00e9\\ud83d\\ude00\\n",[],{},{"a":{"b":[1]}}] [ ]\t\r\n[1]'.encode())
put("json_stream", "limits", b"\x81" + b"[[[[[[[[1]]]]]]]]" + b'["' + b"x" * 400 + b'"]')
put("json_stream", "bad", b"\x03" + b'["\xff"]["a" 1][1,]{}"x"[1e999]')
put("json_stream", "unclosed", b"\x10" + b'["a",' + b'"more",' * 50)

# ---- msgpack_frames
frames = frame(["p", 1, -1, 2**63, 1.5, None, True, b"\x00\xff", {"k": [1, "two"]}, "x" * 40])
put("msgpack_frames", "values", b"\x05" + frames + frame([]))
put("msgpack_frames", "float32_ext", b"\x01" + ber(6) + b"\x91\xca\x3f\x80\x00\x00" + ber(4) + b"\x91\xd4\x01\x02")
put("msgpack_frames", "deep", b"\x80" + ber(10) + b"\x91" * 9 + b"\xc0")
put("msgpack_frames", "badkey", b"\x02" + ber(5) + b"\x91\x81\x01\x02\xc0" + ber(3) + b"\x92\xa1\xff")
put("msgpack_frames", "huge", b"\x00" + b"\xff\xff\xff\xff\x0f" + b"\x91")

# ---- node_port (first byte: bit 0 msgpack, bit 1 route as is)
put("node_port", "kernel_json", b"\x00" + js(
    ["mon1", "x"], ["mon0", "x"], ["kil", "x", "die", "why"], ["kil1", ""], ["kil1", "nope", "r"],
    ["snd", "fuzz-node#nope", 1], ["snd_multiple", ["fuzz-node#a", 1], [], 3],
    ["info", "fuzz-peer#r", "pre"], ["known_nodes", "fuzz-peer#r"], ["up_nodes", "fuzz-peer#r"],
    ["time", "fuzz-peer#r"], ["eval", "1", ["fuzz-peer#r"]], ["eval", "1", "fuzz-peer#r", "p"],
    ["devnull"], [""], [], [42], ["AnyEvent::MP::frobnicate", 1]).encode())
put("node_port", "spawn_json", b"\x00" + js(
    ["AnyEvent::MP::_spawn", "s.1", "Fuzz::init", "x"], ["mon1", "s.1"],
    ["AnyEvent::MP::_spawn", "s.2", "Fuzz::init", "fail"], ["mon1", "s.2"],
    ["AnyEvent::MP::_spawn", "s.3", "No::such"], ["mon1", "s.3"],
    ["AnyEvent::MP::_spawn", "", "Fuzz::init"], ["AnyEvent::MP::_spawn", "a#b", "Fuzz::init"],
    ["AnyEvent::MP::_spawn", "s.1", "Fuzz::init"], ["AnyEvent::MP::_spawn", 1, 2]).encode())
put("node_port", "global_raw", b"\x02" + js(
    ["", "AnyEvent::MP::_spawn", "g.1", "AnyEvent::MP::Global::connect", 0, "fuzz-peer"],
    ["g.1", "addr", []], ["g.1", "connect_nodes", {"other": [], "fuzz-node": []}],
    ["g.1", "set", {"grp": ["fuzz-peer#p1", "bad id#"]}], ["g.1", "reg1", "fuzz-peer#p2", "grp"],
    ["g.1", "reg0", "fuzz-peer#p2", "grp"], ["g.1", "find_node", "other"], ["g.1", "nonsense"],
    [1, 2], ["s.1", "ping"], ["", "kil1", "g.1"]).encode())
put("node_port", "kernel_msgpack", b"\x01" + frame(["info", "fuzz-peer#r"]) + frame(["mon1", b"bytes"]) + frame(["snd", "fuzz-node#x", {"k": 1.5}]))
