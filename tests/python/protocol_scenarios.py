"""Raw-protocol scenarios shared by test_protocol_diff.py and record_protocol.py.

A scenario is a list of steps ``(conn_index, bytes)``.  Every connection is
opened (and its INFO line consumed) before the first step; after each step the
runner reads every connection until it has been quiet for ``quiet`` seconds
(or closed).  The result for a scenario is, per connection, the bytes received
after INFO and whether the server closed the connection.

Subjects are unique per scenario so scenarios can run concurrently against one
server.  Payload-bearing scenarios never send bytes after the point where the
server is expected to give up on the connection (otherwise the unread bytes
turn the server's close into a TCP RST, which may discard its -ERR on our
side).
"""

from __future__ import annotations

import hashlib
import re
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import RawConn

NV = b'CONNECT {"verbose":false}\r\n'  # plain, quiet connect
NVH = b'CONNECT {"verbose":false,"headers":true}\r\n'


def _hpub(subject: bytes, headers: bytes, payload: bytes, reply: bytes = b"") -> bytes:
    hdr = b"NATS/1.0\r\n" + headers + b"\r\n"
    args = subject + (b" " + reply if reply else b"")
    return b"HPUB %s %d %d\r\n%s%s\r\n" % (args, len(hdr), len(hdr) + len(payload), hdr, payload)


S = list[tuple[int, bytes]]
_PING_RE = re.compile(rb"(?i)ping\r?\n")


def one(data: bytes) -> S:
    return [(0, data)]


SCENARIOS: dict[str, S] = {
    # --- CONNECT / PING basics -------------------------------------------
    "connect_verbose_false_ping": one(NV + b"PING\r\n"),
    "connect_empty_json_verbose_default": one(b"CONNECT {}\r\nPING\r\n"),
    "ping_without_connect": one(b"PING\r\n"),
    "connect_unknown_fields_ignored": one(b'CONNECT {"verbose":false,"bogus_field":42,"name":"x"}\r\nPING\r\n'),
    "connect_twice": one(NV + b'CONNECT {"verbose":true}\r\nPING\r\n'),
    "connect_bad_json": one(b"CONNECT {bad json\r\nPING\r\n"),
    "connect_no_args": one(b"CONNECT\r\n"),
    "connect_protocol_5": one(b'CONNECT {"verbose":false,"protocol":5}\r\nPING\r\n'),
    "connect_protocol_0": one(b'CONNECT {"verbose":false,"protocol":0}\r\nPING\r\n'),
    "lowercase_ops": one(b'connect {"verbose":false}\r\nsub lc.x 1\r\npub lc.x 2\r\nhi\r\nping\r\n'),
    "mixed_case_ops": one(b'CoNnEcT {"verbose":false}\r\nSuB mc.x 1\r\nPuB mc.x 2\r\nhi\r\nPiNg\r\n'),
    "lf_only_lines": one(b'CONNECT {"verbose":false}\nSUB lf.x 1\nPUB lf.x 2\nhi\r\nPING\n'),
    "tabs_as_separators": one(NV + b"SUB\ttab.x\t1\r\nPUB\ttab.x\t2\r\nhi\r\nPING\r\n"),
    "extra_spaces": one(NV + b"SUB   sp.x   1  \r\nPUB  sp.x   2 \r\nhi\r\nPING\r\n"),
    "empty_line": one(NV + b"\r\nPING\r\n"),
    # --- garbage / unexpected ops -----------------------------------------
    "garbage_op_after_connect": one(NV + b"FOO bar\r\n"),
    "garbage_op_before_connect": one(b"XYZZY\r\n"),
    "client_sends_pong": one(NV + b"PONG\r\nPING\r\n"),
    "client_sends_ok": one(NV + b"+OK\r\nPING\r\n"),
    "client_sends_err": one(NV + b"-ERR 'whatever'\r\nPING\r\n"),
    "client_sends_msg": one(NV + b"MSG cm.x 1 1\r\na\r\n"),
    "client_sends_info": one(NV + b'INFO {"server_id":"x"}\r\nPING\r\n'),
    # --- before CONNECT ----------------------------------------------------
    "pub_before_connect": one(b"PUB pbc.x 2\r\nhi\r\nPING\r\n"),
    "sub_before_connect": one(b"SUB sbc.x 1\r\nPUB sbc.x 2\r\nhi\r\nPING\r\n"),
    # --- SUB / UNSUB ---------------------------------------------------------
    "pub_sub_basic": one(NV + b"SUB ps.x 1\r\nPUB ps.x 5\r\nhello\r\nPING\r\n"),
    "pub_with_reply": one(NV + b"SUB pr.x 1\r\nPUB pr.x pr.reply 2\r\nhi\r\nPING\r\n"),
    "zero_length_payload": one(NV + b"SUB zl.x 1\r\nPUB zl.x 0\r\n\r\nPING\r\n"),
    "wildcards": one(
        NV
        + b"SUB wc.* 1\r\nSUB wc.> 2\r\nSUB wc.a.* 3\r\n"
        + b"PUB wc.a 1\r\n1\r\nPUB wc.a.b 1\r\n2\r\nPUB wc.a.b.c 1\r\n3\r\nPUB wcx.a 1\r\n4\r\nPING\r\n"
    ),
    "sub_invalid_empty_token": one(NV + b"SUB is..x 1\r\nPING\r\n"),
    "sub_invalid_trailing_dot": one(NV + b"SUB is.x. 1\r\nPING\r\n"),
    "sub_invalid_leading_dot": one(NV + b"SUB .is.x 1\r\nPING\r\n"),
    "sub_invalid_fwc_not_last": one(NV + b"SUB is.>.x 1\r\nPING\r\n"),
    "sub_star_inside_token_is_literal": one(NV + b"SUB st.a* 1\r\nPUB st.a* 1\r\nx\r\nPUB st.ab 1\r\ny\r\nPING\r\n"),
    "sub_no_args": one(NV + b"SUB\r\n"),
    "sub_one_arg": one(NV + b"SUB only.subject\r\n"),
    "sub_too_many_args": one(NV + b"SUB tm.x q 1 extra\r\n"),
    "sub_duplicate_sid": one(NV + b"SUB ds.a 1\r\nSUB ds.b 1\r\nPUB ds.a 1\r\na\r\nPUB ds.b 1\r\nb\r\nPING\r\n"),
    "unsub_no_args": one(NV + b"UNSUB\r\n"),
    "unsub_too_many_args": one(NV + b"UNSUB 1 2 3\r\n"),
    "unsub_unknown_sid": one(NV + b"UNSUB 99\r\nPING\r\n"),
    "unsub_with_max": one(
        NV + b"SUB um.x 7\r\nUNSUB 7 2\r\nPUB um.x 1\r\na\r\nPUB um.x 1\r\nb\r\nPUB um.x 1\r\nc\r\nPING\r\n"
    ),
    "unsub_max_already_reached": one(
        NV + b"SUB ur.x 3\r\nPUB ur.x 1\r\na\r\nPUB ur.x 1\r\nb\r\nPING\r\n"
        + b"UNSUB 3 1\r\nPUB ur.x 1\r\nc\r\nPING\r\n"
    ),
    "unsub_then_pub": one(NV + b"SUB up.x 4\r\nUNSUB 4\r\nPUB up.x 1\r\na\r\nPING\r\n"),
    "queue_and_plain_sub": one(NV + b"SUB qp.x grp 1\r\nSUB qp.x 2\r\nPUB qp.x 1\r\na\r\nPING\r\n"),
    "utf8_subject": one(NV + "SUB ünï.cødé 1\r\nPUB ünï.cødé 2\r\nhi\r\nPING\r\n".encode()),
    # --- PUB errors ----------------------------------------------------------
    "pub_wildcard_subject_pedantic_default": one(
        b'CONNECT {"verbose":false}\r\nSUB pw.* 1\r\nPUB pw.* 1\r\na\r\nPING\r\n'
    ),
    "pub_fwc_subject_pedantic_default": one(NV + b"SUB pf.> 1\r\nPUB pf.> 1\r\na\r\nPING\r\n"),
    "pub_wildcard_subject_pedantic_false": one(
        b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB pn.* 1\r\nPUB pn.* 1\r\na\r\nPING\r\n'
    ),
    "pub_wildcard_subject_pedantic_true": one(
        b'CONNECT {"verbose":false,"pedantic":true}\r\nSUB pt.* 1\r\nPUB pt.* 1\r\na\r\nPING\r\n'
    ),
    "pub_invalid_subject_empty_token": one(NV + b"SUB pe.> 1\r\nPUB pe..x 1\r\na\r\nPING\r\n"),
    "pub_size_negative": one(NV + b"PUB neg.x -1\r\n"),
    "pub_size_not_a_number": one(NV + b"PUB nan.x abc\r\n"),
    "pub_size_missing": one(NV + b"PUB ms.x\r\n"),
    "pub_no_args": one(NV + b"PUB\r\n"),
    "pub_too_many_args": one(NV + b"PUB tma.x a b 1\r\n"),
    "pub_max_payload_exceeded": one(NV + b"PUB mpe.x 1048577\r\n"),
    "pub_exactly_max_payload": one(NV + b"SUB mpx.x 1\r\nPUB mpx.x 1048576\r\n" + b"z" * 1048576 + b"\r\nPING\r\n"),
    "pub_wrong_payload_terminator": one(NV + b"PUB wt.x 3\r\nabcXY\r\n"),
    "pub_payload_shorter_than_size": one(NV + b"PUB sh.x 10\r\nabc\r\nPING\r\n"),
    "control_line_too_long": one(NV + b"PUB " + b"a" * 4200),
    "control_line_long_but_ok": one(NV + b"SUB " + b"l" * 3000 + b" 1\r\nPUB " + b"l" * 3000 + b" 1\r\nx\r\nPING\r\n"),
    # --- verbose -------------------------------------------------------------
    "verbose_mode": one(
        b'CONNECT {"verbose":true}\r\nSUB vb.x 1\r\nPUB vb.x 1\r\nx\r\nUNSUB 1\r\nPING\r\n'
    ),
    "verbose_mode_errors": one(b'CONNECT {"verbose":true}\r\nSUB vb..x 1\r\nUNSUB 55\r\nPING\r\n'),
    # --- headers -------------------------------------------------------------
    "hpub_without_headers_connect": one(NV + _hpub(b"hn.x", b"", b"hi")),
    "hpub_with_headers": one(NVH + b"SUB hh.x 1\r\n" + _hpub(b"hh.x", b"A: 1\r\nA: 2\r\nB: x\r\n", b"hi") + b"PING\r\n"),
    "hpub_with_reply": one(NVH + b"SUB hr.x 1\r\n" + _hpub(b"hr.x", b"K: v\r\n", b"", reply=b"hr.reply") + b"PING\r\n"),
    "hpub_header_larger_than_total": one(NVH + b"HPUB hl.x 10 5\r\n"),
    "hpub_to_non_header_subscriber": [
        (0, NV + b"SUB hx.x 1\r\nPING\r\n"),
        (1, NVH + _hpub(b"hx.x", b"K: v\r\n", b"body") + b"PING\r\n"),
        (0, b"PING\r\n"),
    ],
    # --- no responders -------------------------------------------------------
    "no_responders_without_headers": one(b'CONNECT {"verbose":false,"no_responders":true}\r\nPING\r\n'),
    "no_responders_with_headers": one(
        b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n'
        + b"SUB nr.inbox 1\r\nPUB nr.req nr.inbox 2\r\nhi\r\nPING\r\n"
    ),
    "no_responders_not_requested": one(NVH + b"SUB nn.inbox 1\r\nPUB nn.req nn.inbox 2\r\nhi\r\nPING\r\n"),
    # --- echo ------------------------------------------------------------------
    "echo_off": [
        (0, b'CONNECT {"verbose":false,"echo":false}\r\nSUB eo.x 1\r\nPUB eo.x 1\r\na\r\nPING\r\n'),
        (1, NV + b"PUB eo.x 1\r\nb\r\nPING\r\n"),
        (0, b"PING\r\n"),
    ],
    "echo_default_on": one(NV + b"SUB eon.x 1\r\nPUB eon.x 1\r\na\r\nPING\r\n"),
    # --- multi-connection fan-out -------------------------------------------
    "two_connections_fanout": [
        (0, NV + b"SUB fo.> 11\r\nPING\r\n"),
        (1, NV + b"SUB fo.a 22\r\nPING\r\n"),
        (2, NV + b"PUB fo.a fo.r 3\r\nabc\r\nPUB fo.b 0\r\n\r\nPING\r\n"),
        (0, b"PING\r\n"),
        (1, b"PING\r\n"),
    ],
}


def _sent_digest(steps: S) -> str:
    h = hashlib.sha256()
    for conn, data in steps:
        h.update(b"%d:%d:" % (conn, len(data)))
        h.update(data)
    return h.hexdigest()


def describe_sent(steps: S) -> list:
    """Human-readable form of a scenario's input for the JSON file."""
    out = []
    for conn, data in steps:
        if len(data) > 600:
            text = data[:200].decode("latin-1") + f"...<{len(data)} bytes total>..." + data[-40:].decode("latin-1")
        else:
            text = data.decode("latin-1")
        out.append([conn, text])
    return out


MAX_INLINE = 4096


def _frames(data: bytes) -> list[bytes] | None:
    """Split server output into protocol frames (MSG/HMSG include their payload).

    Returns None if the output does not parse (it is then compared verbatim).
    """
    out = []
    i = 0
    while i < len(data):
        j = data.find(b"\r\n", i)
        if j < 0:
            out.append(data[i:])  # trailing partial line
            break
        line = data[i : j + 2]
        i = j + 2
        parts = line.split()
        op = parts[0].upper() if parts else b""
        if op in (b"MSG", b"HMSG"):
            try:
                size = int(parts[-1])
            except ValueError:
                return None
            if i + size + 2 > len(data):
                return None
            line += data[i : i + size + 2]
            i += size + 2
        out.append(line)
    return out


def _delivery_key(frame: bytes):
    """(subject, reply, sizes, payload) of a MSG/HMSG frame, None otherwise."""
    head, _, payload = frame.partition(b"\r\n")
    parts = head.split()
    if not parts or parts[0] not in (b"MSG", b"HMSG"):
        return None
    nsizes = 2 if parts[0] == b"HMSG" else 1
    if len(parts) < 3 + nsizes:
        return None
    subject, rest = parts[1], parts[3:]
    return (parts[0], subject, tuple(rest), payload)


def canonical(data: bytes) -> bytes:
    """Normalise what legitimately varies between conforming servers.

    * server-initiated ``PING`` frames (nats-server sends its first PING to a
      client about two seconds after it connects, so whether one shows up in a
      scenario depends only on timing) are dropped;
    * when one published message is delivered to several subscriptions of the
      same connection, the protocol does not fix the order of those copies:
      such a run of consecutive MSG/HMSG frames (same subject, reply, sizes and
      payload, differing only in sid) is sorted by sid.
    """
    frames = _frames(data)
    if frames is None:
        return data
    frames = [f for f in frames if f != b"PING\r\n"]
    out: list[bytes] = []
    k = 0
    while k < len(frames):
        key = _delivery_key(frames[k])
        end = k + 1
        if key is not None:
            while end < len(frames) and _delivery_key(frames[end]) == key:
                end += 1
        run = frames[k:end]
        if len(run) > 1:
            run.sort(key=lambda f: int(f.split()[2]) if f.split()[2].isdigit() else 0)
        out.extend(run)
        k = end
    return b"".join(out)


def _summarise(data: bytes) -> dict:
    """Received bytes as stored in JSON (big outputs only by length and hash)."""
    if len(data) <= MAX_INLINE:
        return {"recv": data.decode("latin-1")}
    return {
        "recv_len": len(data),
        "recv_sha256": hashlib.sha256(data).hexdigest(),
        "recv_head": data[:120].decode("latin-1"),
    }


def run_scenario(port: int, steps: S, quiet: float = 0.15, timeout: float = 5.0) -> dict:
    nconns = max(c for c, _ in steps) + 1
    conns = [RawConn(port) for _ in range(nconns)]
    try:
        for c in conns:
            c.read_info()
        recv = [bytearray() for _ in conns]
        pings = [0] * nconns
        for idx, data in steps:
            conns[idx].send(data)
            # Wait (bounded) for the answer to every PING sent so far, or a
            # close, so that a slow machine does not truncate the output ...
            pings[idx] += len(_PING_RE.findall(data))
            deadline = time.monotonic() + timeout
            c = conns[idx]
            while not c.closed and (bytes(recv[idx]) + bytes(c.buf)).count(b"PONG\r\n") < pings[idx]:
                if time.monotonic() > deadline:
                    break
                c._recv(deadline - time.monotonic())
            # ... then read every connection until it is quiet.
            for i, c in enumerate(conns):
                got, _ = c.collect(quiet=quiet, timeout=timeout)
                recv[i] += got
        # A last short look for a close that follows the final response.
        for i, c in enumerate(conns):
            got, _ = c.collect(quiet=0.05, timeout=0.5)
            recv[i] += got
        return {
            "digest": _sent_digest(steps),
            "conns": [dict(_summarise(canonical(bytes(r))), closed=c.closed) for r, c in zip(recv, conns)],
        }
    finally:
        for c in conns:
            c.close()


def run_all(port: int, scenarios: dict[str, S] = SCENARIOS, quiet: float = 0.15) -> dict[str, dict]:
    """Run every scenario concurrently (each on its own connections)."""
    with ThreadPoolExecutor(max_workers=len(scenarios)) as ex:
        futs = {name: ex.submit(run_scenario, port, steps, quiet) for name, steps in scenarios.items()}
        out = {}
        for name, fut in futs.items():
            try:
                out[name] = fut.result()
            except Exception as e:  # a server that misbehaves must not hide the other scenarios
                out[name] = {"digest": _sent_digest(scenarios[name]), "error": f"{type(e).__name__}: {e}"}
        return out


def render(result: dict) -> str:
    """Readable form for assertion messages."""
    if "error" in result:
        return f"<runner error: {result['error']}>"
    parts = []
    for i, c in enumerate(result["conns"]):
        if "recv" in c:
            shown = repr(c["recv"].encode("latin-1"))
        else:
            shown = f"<{c['recv_len']} bytes sha256={c['recv_sha256'][:16]} head={c['recv_head'].encode('latin-1')!r}>"
        parts.append(f"conn{i}: recv={shown} closed={c['closed']}")
    return "\n".join(parts)


def comparable(result: dict):
    if "error" in result:
        return ("error", result["error"])
    return [
        (c.get("recv"), c.get("recv_len"), c.get("recv_sha256"), c["closed"]) for c in result["conns"]
    ]
