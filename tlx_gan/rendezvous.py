"""``tlx-gan train --nnodes M --node-rank R --master-addr A --master-port P``: the machines of a multi-node
run find each other before any framework loads.

Each engine wants every rank's address before it starts (paddle's trainer endpoints and TensorFlow's
``TF_CONFIG`` list them all; torch's ``tcp://`` rendezvous needs the first only). So node 0's launcher
listens on A:P; every other node's launcher connects there and sends the ports it chose free for its ranks,
on the address it reached A from; once all M have joined, node 0 answers each with the whole list. The
nodes also compare a fingerprint of the run (the flags that decide the maths, and the starting
checkpoint's bytes). Machines given different flags then fail at once with one line, instead of waiting
in the first collective until it times out.

The exchange is one JSON line each way over TCP (IPv4), framework-free, and over before any rank starts.
"""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import struct
import time
from dataclasses import dataclass

from tlx_gan.errors import UserError
from tlx_gan.ranks import endpoint, free_ports

JOIN_TIMEOUT_S = 300.0  # how long node 0 waits for the others, and they for node 0
_CONNECT_RETRY_S = 0.5  # node 0 may start after the others: they retry until it listens
_HELLO_S = 10.0  # a node says hello as it connects; a connection silent this long is not one
_LINE_LIMIT = 1 << 20  # a hello or an answer is a few hundred bytes; a peer sending more is not tlx-gan


@dataclass(frozen=True)
class Node:
    """This machine's place in a multi-node run (the same --nnodes, --master-addr and --master-port on all)."""

    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int
    join_timeout_s: float = JOIN_TIMEOUT_S

    @property
    def where(self) -> str:
        return f"{self.master_addr}:{self.master_port}"

    def first_rank(self, nproc: int) -> int:
        """The rank of this machine's first process: ranks are numbered node by node, ``nproc`` each."""
        return self.node_rank * nproc


def meet(node: Node, nproc: int, fingerprint: str) -> list[str]:
    """The group's endpoints ("host:port" of its rendezvous, then of every rank, node by node, ``nproc`` each),
    agreed with the other nodes; raises :class:`UserError` naming what kept them apart."""
    return _host(node, nproc, fingerprint) if node.node_rank == 0 else _join(node, nproc, fingerprint)


def _host(node: Node, nproc: int, fingerprint: str) -> list[str]:
    try:
        server = socket.create_server((node.master_addr, node.master_port))
    except socket.gaierror as error:
        raise UserError(f"--master-addr {node.master_addr}: not an address this machine can resolve "
                        f"({error.strerror})") from None
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UserError(f"--master-port {node.master_port} is in use on {node.master_addr}: choose a free port "
                            "(the same on every node)") from None
        if error.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"--master-addr {node.master_addr} is not an address of this machine: run --node-rank 0 "
                            "on the machine --master-addr names") from None
        raise UserError(f"cannot listen on --master-addr/--master-port {node.where}: {error.strerror}") from None
    joined: dict[int, tuple[socket.socket, list[str]]] = {}
    try:
        with server:
            deadline = time.monotonic() + node.join_timeout_s
            while len(joined) < node.nnodes - 1:
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(set(range(1, node.nnodes)) - set(joined))
                    raise UserError(f"node(s) {', '.join(map(str, missing))} of --nnodes {node.nnodes} did not join "
                                    f"{node.where} within {node.join_timeout_s:g} s (--join-timeout): start them "
                                    "with the same --master-addr and --master-port")
                server.settimeout(left)
                with contextlib.suppress(TimeoutError):
                    conn, _ = server.accept()
                    hello = _receive(conn, min(left, _HELLO_S))
                    if hello is None:  # not a tlx-gan node (a port scan, a health check): ignore it
                        conn.close()
                        continue
                    problem = _mismatch(hello, node, nproc, fingerprint, joined)
                    if problem:
                        with contextlib.suppress(OSError):
                            _send(conn, {"error": problem})
                        conn.close()
                        raise UserError(problem)
                    joined[hello["node_rank"]] = (conn, hello["endpoints"])
            # node 0's ports chosen last, so they have the least time to be taken
            own = [endpoint(node.master_addr, port) for port in free_ports(nproc + 1, node.master_addr)]
            endpoints = own + [e for rank in range(1, node.nnodes) for e in joined[rank][1]]
            if len(set(endpoints)) != len(endpoints):  # two nodes on one host drew the same free port
                raise UserError("two nodes chose the same port on one host: start the run again")
            for rank, (conn, _) in joined.items():
                try:
                    _send(conn, {"endpoints": endpoints})
                except OSError:
                    raise UserError(f"node {rank} left the rendezvous before the answer: start it again") from None
            return endpoints
    except UserError as error:
        for conn, _ in joined.values():
            with contextlib.suppress(OSError):
                _send(conn, {"error": f"node 0: {error}"})
        raise
    finally:
        for conn, _ in joined.values():
            conn.close()


def _mismatch(hello: dict, node: Node, nproc: int, fingerprint: str, joined: dict) -> str | None:
    rank = hello.get("node_rank")
    if not isinstance(rank, int) or not 0 < rank < node.nnodes:
        return f"a node joined {node.where} as --node-rank {rank}: use 1 to {node.nnodes - 1} (0 is this node)"
    if rank in joined:
        return f"two nodes joined {node.where} as --node-rank {rank}: give each node its own"
    if hello.get("nnodes") != node.nnodes or hello.get("nproc") != nproc:
        return (f"node {rank} runs --nnodes {hello.get('nnodes')} --nproc {hello.get('nproc')}, node 0 --nnodes "
                f"{node.nnodes} --nproc {nproc}: give every node the same")
    if hello.get("fingerprint") != fingerprint:
        return (f"node {rank} was given another run than node 0 (model, loss, batch size, length, seed, precision, "
                "step, training data or starting checkpoint differ): give every node the same flags and files")
    if not isinstance(hello.get("endpoints"), list) or len(hello["endpoints"]) != nproc:
        return f"node {rank} sent {hello.get('endpoints')!r} for its {nproc} rank(s)"
    return None


def _join(node: Node, nproc: int, fingerprint: str) -> list[str]:
    deadline = time.monotonic() + node.join_timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            sock = _connect_to_master(node, timeout_s=max(0.1, min(5.0, left)))
        except socket.gaierror as error:
            raise UserError(f"--master-addr {node.master_addr}: not an address this machine can resolve "
                            f"({error.strerror})") from None
        except OSError:
            sock = None
        if sock is not None:
            break
        if left <= _CONNECT_RETRY_S:
            raise UserError(f"node 0 did not answer at --master-addr/--master-port {node.where} within "
                            f"{node.join_timeout_s:g} s (--join-timeout): start it there with --node-rank 0 "
                            "(a node 0 that stopped before this node came says why on its own machine)")
        time.sleep(_CONNECT_RETRY_S)
    with sock:
        host = sock.getsockname()[0]  # this machine's address on the route to node 0
        ports = free_ports(nproc, host)
        _send(sock, {"node_rank": node.node_rank, "nnodes": node.nnodes, "nproc": nproc, "fingerprint": fingerprint,
                     "endpoints": [endpoint(host, port) for port in ports]})
        answer = _receive(sock, max(1.0, deadline - time.monotonic()) + node.join_timeout_s)
    if answer is None:
        raise UserError(f"node 0 at {node.where} closed the rendezvous without an answer (it stopped, or is not "
                        "tlx-gan)")
    if "error" in answer:
        raise UserError(str(answer["error"]))
    endpoints = answer.get("endpoints")
    if not isinstance(endpoints, list) or len(endpoints) != 1 + node.nnodes * nproc:
        raise UserError(f"{node.where} answered {str(answer)[:80]!r}, not the run's endpoints: is it tlx-gan's node 0?")
    return [str(e) for e in endpoints]


def _connect_to_master(node: Node, timeout_s: float) -> socket.socket | None:
    """A connection to node 0's rendezvous; None where nothing listens there yet.

    While nothing listens, the kernel may give an attempt the master port itself as its own: TCP's simultaneous
    open then connects the socket to itself, and it would read its own hello as node 0's answer. Such a socket
    is closed with a reset (no TIME_WAIT that would keep node 0 from listening on that port) and counts as none."""
    sock = socket.create_connection((node.master_addr, node.master_port), timeout=timeout_s)
    if sock.getsockname() != sock.getpeername():
        return sock
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    return None


def _send(sock: socket.socket, message: dict) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _receive(sock: socket.socket, timeout_s: float) -> dict | None:
    """One JSON object line from ``sock``; None for anything else, a closed connection or a silent peer."""
    sock.settimeout(timeout_s)
    data = b""
    with contextlib.suppress(OSError):
        while not data.endswith(b"\n") and len(data) < _LINE_LIMIT:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    try:
        message = json.loads(data)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None
