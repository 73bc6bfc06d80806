"""Scripted fake DNS servers for the tests (UDP on 127.0.0.1 only): no tests
here, so importing it registers none."""

import socket
import struct
import threading

import kt


class FakeDNS:
    """UDP server on 127.0.0.1; script(query bytes) returns the datagrams to send."""

    def __init__(self, script):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.script = script
        self.queries = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()
        kt.after_test(self.close)

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                q, peer = self.sock.recvfrom(1500)
            except socket.timeout:
                continue
            except OSError:
                return
            self.queries.append((q, peer))
            for d in self.script(q):
                self.sock.sendto(d, peer)

    def close(self):
        self.stop = True
        self.t.join(2)
        self.sock.close()


def answer(q, flags=0x8180, rrs=(), qd=None):
    """A reply to query q: its ID, the given flags, its question (or qd), records."""
    qd = q[12:] if qd is None else qd
    return struct.pack(">HHHHHH", struct.unpack(">H", q[:2])[0], flags, 1, len(rrs), 0, 0) + qd + b"".join(rrs)


def mx(pref, name):
    rd = struct.pack(">H", pref) + b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"
    return b"\xc0\x0c" + struct.pack(">HHIH", 15, 1, 60, len(rd)) + rd


def qtype(q):
    """The query type of query q."""
    i = 12
    while q[i]:
        i += q[i] + 1
    return struct.unpack(">H", q[i + 1:i + 3])[0]


def a_rec(ip):
    return b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes(int(x) for x in ip.split("."))
