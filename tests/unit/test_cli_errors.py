"""The `truce` command on bad input and bad homes (issue 16): one error line and a hint on
stderr, exit 1, no traceback; TRUCE_HOME private (0700/0600) and tightened when it was not."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import isolated_settings, settings_env


def truce(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(isolated_settings(home)), "TRUCE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_one_clear_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert any(line.startswith("hint: ") for line in lines), done.stderr
    assert len(lines) <= 3, done.stderr
    for word in words:
        assert word in errors[0], done.stderr


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (("--name", "wh-1", "--role", "partner", "--org", "White Helmets!"), "--org"),
        (("--name", "bad/name", "--role", "monitor"), "--name"),
        (("--name", "x" * 65, "--role", "monitor"), "--name"),
        (("--name", "ok-1", "--role", "partner", "--org", "ünïcode"), "--org"),
    ],
)
def test_an_invalid_key_name_or_org_is_one_line(
    tmp_path: Path, args: tuple[str, ...], word: str
) -> None:
    done = truce(tmp_path / "home", "keys", "create", *args)
    assert_one_clear_error(done, word)
    assert done.stdout == ""


@pytest.mark.parametrize("verb", [("status",), ("status", "--json"), ("keys", "list")])
def test_a_home_that_is_a_file_is_one_line(tmp_path: Path, verb: tuple[str, ...]) -> None:
    home = tmp_path / "home"
    home.write_text("not a directory")
    assert_one_clear_error(truce(home, *verb), str(home), "file")


def test_a_home_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_clear_error(truce(blocker / "home", "status"), "cannot be used")


def test_an_unwritable_home_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o500)
    # root writes into any directory, but into procfs not even root can
    unwritable = Path("/proc") if os.geteuid() == 0 else home
    assert_one_clear_error(truce(unwritable, "status"), "cannot be used")


def test_status_exits_non_zero_when_the_stack_is_down(tmp_path: Path) -> None:
    for verb in (("status",), ("status", "--json")):
        done = truce(tmp_path / "home", *verb)
        assert done.returncode == 1, done
        assert "Traceback" not in done.stderr


def _modes(home: Path) -> dict[str, int]:
    return {
        str(p.relative_to(home)): stat.S_IMODE(p.lstat().st_mode) for p in [home, *home.rglob("*")]
    }


def test_a_new_home_is_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = truce(home, "keys", "create", "--name", "m-1", "--role", "monitor")
    assert done.returncode == 0, done.stderr
    modes = _modes(home)
    assert modes["."] == 0o700
    assert modes["keys.json"] == 0o600
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes


def test_an_open_home_is_tightened_with_a_warning(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    home.chmod(0o755)
    (home / "logs").chmod(0o755)
    (home / "logs" / "store.log").write_text("reports of every organisation")
    (home / "logs" / "store.log").chmod(0o644)
    done = truce(home, "keys", "list")
    assert done.returncode == 0, done.stderr
    assert "warning:" in done.stderr, done.stderr
    assert "3 entries" in done.stderr, done.stderr
    modes = _modes(home)
    assert (modes["."], modes["logs"], modes["logs/store.log"]) == (0o700, 0o700, 0o600)
    assert all(mode & 0o077 == 0 for mode in modes.values()), modes
    again = truce(home, "keys", "list")
    assert "warning" not in again.stderr


def test_up_names_a_port_in_use_before_starting_anything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = isolated_settings(home)
    with socket.socket() as taken:
        taken.bind((settings.bind_host, settings.query_port))
        taken.listen()
        env = {**os.environ, **settings_env(settings)}
        done = subprocess.run(
            [sys.executable, "-m", "services.cli", "up", "--detach"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert_one_clear_error(done, str(settings.query_port), "TRUCE_QUERY_PORT")
    assert not (home / "run").exists() or not list((home / "run").glob("*.pid"))
