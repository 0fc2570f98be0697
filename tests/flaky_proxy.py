"""A real TCP proxy in front of the cluster that cuts connections once the client has sent enough bytes."""

from __future__ import annotations

import contextlib
import socket
import threading


class FlakyProxy:
    """Forwards 127.0.0.1:<port> to `target`; after `cut_after` bytes upstream it cuts `cuts` connections
    (`cuts=None`: every connection from then on, i.e. the link is gone for good)."""

    def __init__(self, target: tuple[str, int], cut_after: int, cuts: int | None = 1):
        self.target = target
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.sent = 0
        self.cut_count = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _should_cut(self, n: int) -> bool:
        with self.lock:
            self.sent += n
            if self.sent < self.cut_after or self.cuts_left == 0:
                return False
            if self.cuts_left is not None:
                self.cuts_left -= 1
            self.cut_count += 1
            return True

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.server.accept()
            except OSError:
                return
            up = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(down, up, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, down, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        try:
            while data := src.recv(65536):
                if upstream and self._should_cut(len(data)):
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.server.close()
