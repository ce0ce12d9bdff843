"""Output files: checked before work starts, written through links, never replacing devices, honouring the umask."""

from __future__ import annotations

import os
import socket
import stat

import pytest

from fairflip._errors import FairflipError
from fairflip._io import atomic_write, check_output_dir, check_output_path


def _write_text(text):
    return lambda tmp: tmp.write_text(text)


def test_new_file_honours_umask(tmp_path):
    for mask, expected in [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)]:
        old = os.umask(mask)
        try:
            out = tmp_path / f"new{mask:o}.csv"
            check_output_path(out)
            atomic_write(out, _write_text("a\n"))
        finally:
            os.umask(old)
        assert stat.S_IMODE(out.stat().st_mode) == expected
        assert out.read_text() == "a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new2.csv", "new22.csv", "new77.csv"]


def test_replaced_file_keeps_its_mode(tmp_path):
    out = tmp_path / "x.csv"
    out.write_text("old")
    os.chmod(out, 0o640)
    atomic_write(out, _write_text("new"))
    assert out.read_text() == "new" and stat.S_IMODE(out.stat().st_mode) == 0o640


def test_symlink_is_written_through_and_kept(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    chain = tmp_path / "chain.csv"
    chain.symlink_to(link)
    assert check_output_path(chain) == real
    assert atomic_write(chain, _write_text("new")) == real
    assert chain.is_symlink() and link.is_symlink()
    assert real.read_text() == "new"
    # a link to a file not yet created: the file is created where the link points
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "later.csv")
    check_output_path(dangling)
    atomic_write(dangling, _write_text("z"))
    assert dangling.is_symlink() and (tmp_path / "later.csv").read_text() == "z"


def test_dev_null_is_written_in_place_not_replaced():
    before = os.stat("/dev/null")
    assert check_output_path("/dev/null") == __import__("pathlib").Path("/dev/null")
    atomic_write("/dev/null", _write_text("discarded"))
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino and after.st_rdev == before.st_rdev


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "x.csv"

    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(out, boom)
    assert list(tmp_path.iterdir()) == []
    out.write_text("keep")
    with pytest.raises(RuntimeError):
        atomic_write(out, boom)
    assert out.read_text() == "keep" and [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_refusals_name_the_argument(tmp_path):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    sock_path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        cases = [
            ("", "must name a file"),
            (tmp_path, "is a folder"),
            (tmp_path / "missing" / "out.csv", "does not exist"),
            (afile / "out.csv", "not a folder"),
            ("/proc/x", "system tree"),
            ("/sys/x", "system tree"),
            (sock_path, "special file"),
        ]
        for path, fragment in cases:
            with pytest.raises(FairflipError, match="--flips-out") as info:
                check_output_path(path, name="--flips-out")
            assert fragment in str(info.value), (path, str(info.value))
        for path in [tmp_path, sock_path, "/proc/x"]:
            with pytest.raises(FairflipError):
                atomic_write(path, _write_text("x"))
    finally:
        sock.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "s.sock"]


def test_output_that_is_an_input_is_refused(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("a,b\n1,2\n")
    link = tmp_path / "link.csv"
    link.symlink_to(train)
    hard = tmp_path / "hard.csv"
    os.link(train, hard)
    for out in [train, link, hard, tmp_path / "." / "train.csv"]:
        with pytest.raises(FairflipError, match="input file"):
            check_output_path(out, inputs=[None, tmp_path / "test.csv", train])
    check_output_path(tmp_path / "flips.csv", inputs=[train, None])
    assert train.read_text() == "a,b\n1,2\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder_and_file(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "f.csv").write_text("x")
    os.chmod(ro / "f.csv", 0o444)
    os.chmod(ro, 0o555)
    try:
        with pytest.raises(FairflipError, match="cannot create files"):
            check_output_path(ro / "new.csv")
        with pytest.raises(FairflipError, match="not writable"):
            check_output_path(ro / "f.csv")
        with pytest.raises(FairflipError, match="not writable"):
            check_output_dir(ro / "sub")
    finally:
        os.chmod(ro, 0o755)


def test_check_output_dir(tmp_path):
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    assert check_output_dir(tmp_path / "a" / "b") == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # nothing created
    assert check_output_dir(tmp_path) == tmp_path
    for path, fragment in [(afile, "is a file"), (afile / "sub", "has a file"), ("/proc/fairflip", "system"),
                           ("", "must name a folder")]:
        with pytest.raises(FairflipError, match=fragment):
            check_output_dir(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_named_pipe_is_written_in_place(tmp_path):
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo).read()))
    reader.start()
    check_output_path(fifo)
    atomic_write(fifo, _write_text("row\n1\n"))
    reader.join(10)
    assert received == ["row\n1\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary file, the pipe is still a pipe
