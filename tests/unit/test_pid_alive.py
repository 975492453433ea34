"""A process that exited but was not reaped yet (a zombie) is not alive: `truce demo`
starts and stops the supervisor from one process, and must not wait for a zombie."""

from __future__ import annotations

import subprocess
import time

from services.runtime.supervisor import pid_alive


def test_a_running_child_is_alive_and_an_exited_one_is_not() -> None:
    running = subprocess.Popen(["sleep", "30"])
    exited = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while exited.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # poll() reaps it: start another one to leave a zombie
        zombie = subprocess.Popen(["true"])
        time.sleep(0.5)
        with open(f"/proc/{zombie.pid}/stat") as stat:
            assert stat.read().rsplit(")", 1)[1].split()[0] == "Z"
        assert pid_alive(running.pid)
        assert not pid_alive(zombie.pid)
        assert not pid_alive(exited.pid)
    finally:
        running.kill()
        running.wait()
