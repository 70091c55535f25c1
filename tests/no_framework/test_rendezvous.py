"""The machines of a multi-node run meeting (``tlx_gan.rendezvous``), here as threads on 127.0.0.1: the
endpoints they agree on, and each way they can fail to, as one line naming the flag at fault. That the
engines then train across them as in one machine is ``per_backend/test_data_parallel.py``."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tlx_gan import ranks, rendezvous
from tlx_gan.errors import UserError


def _free_port() -> int:
    return ranks.free_ports(1)[0]


def _meet_all(nodes: list[rendezvous.Node], nproc: int, fingerprints: list[str]) -> list[object]:
    """meet() on every node at once (node 0 started last, as a slow machine would be); each one's endpoints or
    the exception it raised."""
    results: list[object] = [None] * len(nodes)

    def one(index: int) -> None:
        try:
            results[index] = rendezvous.meet(nodes[index], nproc, fingerprints[index])
        except Exception as error:  # noqa: BLE001 - handed back to the test
            results[index] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in reversed(range(len(nodes)))]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join(30)
    return results


def _nodes(n: int, port: int, ranks_given: list[int] | None = None, timeout: float = 10.0) -> list[rendezvous.Node]:
    return [rendezvous.Node(n, rank, "127.0.0.1", port, timeout) for rank in (ranks_given or range(n))]


def test_every_node_gets_the_same_endpoints_node_by_node():
    port = _free_port()
    results = _meet_all(_nodes(3, port), 2, ["run"] * 3)
    assert all(isinstance(r, list) for r in results), results
    assert results[0] == results[1] == results[2]
    endpoints = results[0]
    assert len(endpoints) == 1 + 3 * 2 and len(set(endpoints)) == len(endpoints)
    assert all(e.startswith("127.0.0.1:") for e in endpoints)
    # and a machine's ranks get their places in that list
    members = ranks.node_group({}, endpoints, 1 * 2, 2)
    assert [(m["ranks"]["rank"], m["ranks"]["local_rank"], m["ranks"]["world"]) for m in members] == [(2, 0, 6),
                                                                                                    (3, 1, 6)]


def test_nodes_given_another_run_fail_together_naming_it():
    results = _meet_all(_nodes(2, _free_port()), 1, ["run", "another"])
    assert all(isinstance(r, UserError) for r in results), results
    assert "node 1 was given another run than node 0" in str(results[0])
    assert "node 1 was given another run than node 0" in str(results[1])


def test_two_nodes_with_one_rank_are_refused():
    results = _meet_all(_nodes(3, _free_port(), [0, 1, 1], timeout=5.0), 1, ["run"] * 3)
    assert any("two nodes joined" in str(r) and "--node-rank 1" in str(r) for r in results), results
    assert isinstance(results[0], UserError)


def test_a_master_port_in_use_and_an_address_elsewhere_are_one_line_each():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"--master-port {port} is in use on 127.0.0.1: choose a free port"):
            rendezvous.meet(rendezvous.Node(2, 0, "127.0.0.1", port, 1.0), 1, "run")
    with pytest.raises(UserError, match="--master-addr 192.0.2.1 is not an address of this machine"):
        rendezvous.meet(rendezvous.Node(2, 0, "192.0.2.1", _free_port(), 1.0), 1, "run")  # TEST-NET-1


def test_a_missing_node_times_out_on_either_side():
    port = _free_port()
    began = time.monotonic()
    with pytest.raises(UserError, match=r"node\(s\) 1 of --nnodes 2 did not join 127.0.0.1:\d+ within 1 s"):
        rendezvous.meet(rendezvous.Node(2, 0, "127.0.0.1", port, 1.0), 1, "run")
    with pytest.raises(UserError, match=r"node 0 did not answer at --master-addr/--master-port 127.0.0.1:\d+ within 1"):
        rendezvous.meet(rendezvous.Node(2, 1, "127.0.0.1", port, 1.0), 1, "run")
    assert time.monotonic() - began < 10


def test_a_stray_connection_does_not_stop_the_meeting():
    port = _free_port()
    nodes = _nodes(2, port)
    result: list[object] = []
    host = threading.Thread(target=lambda: result.append(rendezvous.meet(nodes[0], 1, "run")))
    host.start()
    time.sleep(0.3)
    with socket.create_connection(("127.0.0.1", port)) as stray:
        stray.sendall(b"GET / HTTP/1.0\r\n\r\n")
    joined = rendezvous.meet(nodes[1], 1, "run")
    host.join(30)
    assert result == [joined] and len(joined) == 3


def test_the_run_fingerprint_covers_the_data_and_the_maths_but_not_where_a_node_writes():
    import numpy as np

    from tlx_gan import launch
    from tlx_gan.train import TrainOptions

    images = np.zeros((4, 28, 28), np.uint8)
    base = launch.fingerprint(TrainOptions(steps=5), {"model": "mlp"}, "torch", images)
    assert launch.fingerprint(TrainOptions(steps=5, out="elsewhere", progress=False), {"model": "mlp"}, "torch",
                              images) == base
    other_images = images.copy()
    other_images[0, 0, 0] = 1
    for changed in (launch.fingerprint(TrainOptions(steps=5), {"model": "mlp"}, "torch", other_images),
                    launch.fingerprint(TrainOptions(steps=6), {"model": "mlp"}, "torch", images),
                    launch.fingerprint(TrainOptions(steps=5), {"model": "dcgan"}, "torch", images),
                    launch.fingerprint(TrainOptions(steps=5), {"model": "mlp"}, "paddle", images)):
        assert changed != base


def test_a_connection_to_itself_is_not_taken_for_node_0(monkeypatch):
    """Connecting to a master port nobody listens on yet, Linux may pick that very port as the attempt's own:
    the socket then connects to itself (TCP simultaneous open) and would read its own hello back as the answer.
    The joining node retries instead. Seen once as a flaky 3-node meeting on 127.0.0.1."""
    port = _free_port()
    nodes = _nodes(2, port)
    real_connect = socket.create_connection
    made_self = []

    def first_to_itself(address, timeout=None):
        if not made_self:
            own = socket.socket()
            own.bind(address)
            own.connect(address)  # a self-connection, as the kernel's choice of source port can make one
            made_self.append(own.getsockname() == own.getpeername())
            return own
        return real_connect(address, timeout=timeout)

    monkeypatch.setattr(rendezvous.socket, "create_connection", first_to_itself)
    results = _meet_all(nodes, 1, ["run"] * 2)
    assert made_self == [True]
    assert all(isinstance(r, list) for r in results) and results[0] == results[1], results


def test_an_answer_without_the_runs_endpoints_is_one_line():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def answer_nonsense():
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b'{"status": "ok"}\n')

        thread = threading.Thread(target=answer_nonsense)
        thread.start()
        with pytest.raises(UserError, match=f"127.0.0.1:{port} answered .*not the run's endpoints"):
            rendezvous.meet(rendezvous.Node(2, 1, "127.0.0.1", port, 5.0), 1, "run")
        thread.join(10)
