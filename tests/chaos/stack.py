"""What the chaos suite breaks on purpose, over devstack's processes: a pausable TCP proxy in front of the S3
server, and a pool of worker processes that can be killed and replaced (the restartable AOF redis-server is
devstack's `RedisServer(aof=True)`)."""

import os
import signal
import socket
import threading
from pathlib import Path

from devstack.processes import WorkerProcess, free_port


class PausableProxy:
    """A TCP proxy on a fixed port: `pause` drops every connection and stops listening; `resume` listens."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.resume()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def resume(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def pause(self) -> None:
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by pause()
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._conns.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass


class WorkerPool:
    """GPU worker processes on one queue set; killed ones are replaced by fresh ones."""

    def __init__(self, env: dict[str, str], log_dir: Path, size: int) -> None:
        self._env = env
        self._log_dir = log_dir
        self._count = 0
        self.workers: list[WorkerProcess] = []
        starters = [threading.Thread(target=self.add) for _ in range(size)]
        for starter in starters:
            starter.start()
        for starter in starters:
            starter.join()

    def add(self) -> WorkerProcess:
        self._count += 1
        name = f"chaos{self._count}"
        worker = WorkerProcess(self._env, self._log_dir / f"{name}.log", name=name)
        self.workers.append(worker)
        return worker

    def by_pid(self, pid: int) -> WorkerProcess | None:
        return next((worker for worker in self.workers if worker.pid == pid), None)

    def kill9(self, worker: WorkerProcess) -> None:
        os.kill(worker.pid, signal.SIGKILL)
        self.retire(worker)

    def retire(self, worker: WorkerProcess) -> None:
        """Forget a worker that exited (or is made to), closing its log."""
        worker.wait()
        worker.stop()
        self.workers.remove(worker)

    def logs(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self._log_dir.glob("*.log")))

    def stop(self) -> None:
        for worker in list(self.workers):
            worker.stop()
