"""Notice a rank that died, so the others stop with its name instead of waiting in a collective forever.

Every rank keeps one TCP connection to rank 0. A process that ends, however it ends (an exception,
SIGKILL, a lost node), has its sockets closed by the kernel, so the other side reads end-of-file at
once. Rank 0 tells the remaining ranks which rank went; a rank that loses its connection to rank 0
knows rank 0 went. A rank leaving on purpose (destroy_process_group) says goodbye first, and is not
counted as dead. Waits for a collective check `dead_rank` between polls (see work.py).

MPI alone cannot do this: a collective with a dead peer may wait forever, and which peer is missing
is not something it reports.
"""
import select
import socket
import struct
import threading
import time

from .errors import RankFailure

_GOODBYE, _DEAD = b"B", b"D"


class Watchdog:
    def __init__(self, comm, rank, world_size, host, timeout_s):
        self.rank, self.world_size = rank, world_size
        self.dead_rank = None
        self._closing = False
        self._peers = {}  # rank 0: {socket: rank}; other ranks: {their socket to rank 0: 0}
        listener = None
        if rank == 0:
            listener = socket.create_server(("", 0), backlog=world_size)
            address = (host, listener.getsockname()[1])
        else:
            address = None
        address = comm.bcast(address, root=0)  # before any training starts, MPI itself is fine to use
        if rank == 0:
            self._accept_all(listener, timeout_s)
        else:
            connection = socket.create_connection(address, timeout=timeout_s)
            connection.sendall(struct.pack("!i", rank))
            self._peers[connection] = 0
        comm.barrier()  # every connection is up before anyone can fail
        self._thread = threading.Thread(target=self._watch, name="tinygrad_tx-distributed-watchdog", daemon=True)
        self._thread.start()

    def _accept_all(self, listener, timeout_s):
        listener.settimeout(timeout_s)
        with listener:
            while len(self._peers) < self.world_size - 1:
                connection, _ = listener.accept()
                connection.settimeout(timeout_s)
                (peer_rank,) = struct.unpack("!i", _read_exactly(connection, 4))
                connection.settimeout(None)
                self._peers[connection] = peer_rank

    def _watch(self):
        while self._peers and not self._closing:
            try:
                readable, _, _ = select.select(list(self._peers), [], [], 0.5)
            except (OSError, ValueError):  # close() closed a socket under select
                return
            for connection in readable:
                message = _receive(connection)
                peer_rank = self._peers.pop(connection, None)
                if peer_rank is None:  # close() got there first
                    continue
                connection.close()
                if message == _GOODBYE:
                    continue
                if self.rank != 0 and message[:1] == _DEAD:  # rank 0 tells who went
                    self._mark_dead(struct.unpack("!i", message[1:5])[0])
                elif not self._closing:  # end of file: the peer's process is gone
                    self._mark_dead(peer_rank)

    def _mark_dead(self, rank):
        if self.dead_rank is None:
            self.dead_rank = rank
        if self.rank == 0:
            for connection in list(self._peers):
                try:
                    connection.sendall(_DEAD + struct.pack("!i", rank))
                except OSError:
                    pass

    def check(self, what):
        """Raise RankFailure naming the dead rank, if one died."""
        if self.dead_rank is not None:
            raise RankFailure(f"{what}: rank {self.dead_rank} of {self.world_size} died or exited without "
                              f"destroy_process_group() while rank {self.rank} still needed it; stopping "
                              "(see that rank's output for why)")

    def close(self):
        """Leave on purpose: the others will not count this rank as dead."""
        self._closing = True
        for connection in list(self._peers):
            try:
                connection.sendall(_GOODBYE)
                connection.close()
            except OSError:
                pass
        self._peers.clear()


def _receive(connection):
    """One message, or b'' at end of file (a closed or reset connection reads the same)."""
    try:
        data = connection.recv(5)
    except OSError:
        return b""
    if data[:1] == _DEAD and len(data) < 5:
        data += _read_exactly(connection, 5 - len(data))
    return data


def _read_exactly(connection, size):
    data = b""
    deadline = time.monotonic() + 10
    while len(data) < size and time.monotonic() < deadline:
        chunk = connection.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
