"""The command line as a demanding user drives it: closed streams, empty names, options that a
mode would ignore (QA pass 10)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imgdup.cli import main

from .synth import photo


def _pair(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    photo(1).save(folder / "a.png")
    shutil.copyfile(folder / "a.png", folder / "b.png")


def _run_with_closed(fd: int, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``imgdup ARGS >&-`` (fd 1) or ``2>&-`` (fd 2), as a cron line or a service may start it."""
    return subprocess.run(
        [sys.executable, "-m", "imgdup", *args, "--no-cache", "-j", "1"],
        stdin=subprocess.DEVNULL, stdout=None if fd == 1 else subprocess.PIPE,
        stderr=None if fd == 2 else subprocess.PIPE,
        preexec_fn=lambda: os.close(fd), timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("fd", [1, 2])
def test_a_closed_standard_stream_neither_crashes_nor_stops_the_work(tmp_path: Path, fd: int) -> None:
    """With stdout or stderr closed (``>&-``), Python's sys.stdout/sys.stderr is None: the scan
    ended in a traceback (AttributeError), exit 1, and with stderr closed the report was never
    written and the removal never done."""
    data = tmp_path / "data"
    _pair(data)
    report = tmp_path / "r.json"
    done = _run_with_closed(fd, "-d", str(data), "--report", str(report), "--remove", "1")
    other = done.stderr if fd == 1 else done.stdout
    assert done.returncode == 0, other
    assert b"Traceback" not in other
    assert report.is_file() and sorted(p.name for p in data.iterdir()) == ["a.png"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_output_that_cannot_be_written_after_a_removal_still_names_its_manifest(tmp_path: Path, fmt: str) -> None:
    """stdout on a full disk (``> /dev/full``): the files were moved and the manifest written, but
    the command said only "imgdup: error: [Errno 28] No space left on device", with no manifest
    and no undo command; an undo so restored every file and said the same (QA pass 34)."""
    data = tmp_path / "data"
    _pair(data)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        with open("/dev/full", "w") as full:
            return subprocess.run(
                [sys.executable, "-m", "imgdup", *args, "--format", fmt], stdout=full, stderr=subprocess.PIPE,
                text=True, timeout=120, check=False,
            )  # fmt: skip

    done = run("-d", str(data), "--no-cache", "-j", "1", "--remove", "1")
    assert sorted(p.name for p in data.iterdir()) == ["a.png"]
    assert done.returncode == 1, done.stderr
    assert "cannot write the output: No space left on device" in done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("imgdup: undo with: ")]
    manifest = shlex.split(line.removeprefix("imgdup: undo with: "))[2]
    assert "1 file moved to the quarantine" in done.stderr and Path(manifest).is_file()
    undone = run("--undo", manifest)
    assert undone.returncode == 1 and "cannot write the output" in undone.stderr
    assert "restored 1 file, 0 already in place, 0 problems" in undone.stderr, undone.stderr
    assert sorted(p.name for p in data.iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_name_the_output_encoding_cannot_hold_is_escaped_not_a_traceback(tmp_path: Path, fmt: str) -> None:
    """With stdout in a legacy encoding (a Latin-1 locale; PYTHONIOENCODING=ascii) a name such as
    日本.jpg ended the run in UnicodeEncodeError after the removal had moved it: no manifest, no
    undo command, exit 1 (QA pass 20)."""
    data = tmp_path / "data"
    data.mkdir()
    photo(1).save(data / "a.png")
    shutil.copyfile(data / "a.png", data / "日本.png")
    done = subprocess.run(
        [sys.executable, "-m", "imgdup", "-d", str(data), "--remove", "1", "--format", fmt, "--no-cache", "-j", "1"],
        capture_output=True, env={**os.environ, "PYTHONIOENCODING": "ascii"}, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode("ascii", "replace")
    assert b"Traceback" not in done.stderr
    out = done.stdout.decode("ascii")
    if fmt == "json":
        assert json.loads(out)["removal"]["removed"] == [str(data / "日本.png")]
    else:
        assert "\\u65e5\\u672c.png" in out and "undo with: imgdup --undo" in out
    assert sorted(p.name for p in data.iterdir()) == ["a.png"]


def test_the_undo_command_shown_runs_as_pasted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Under "my photos" the removal said "undo with: imgdup --undo /.../my photos.imgdup-quarantine/
    .../manifest.json", which a shell splits at the space (QA pass 20)."""
    data = tmp_path / "my photos"
    _pair(data)
    assert main(["-d", str(data), "--no-cache", "-q", "-j", "1", "--remove", "1"]) == 0
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("undo with: ")]
    command = shlex.split(line.removeprefix("undo with: "))
    assert command[:2] == ["imgdup", "--undo"] and len(command) == 3
    assert main(command[1:]) == 0
    assert sorted(p.name for p in data.iterdir()) == ["a.png", "b.png"]


def test_undo_given_a_run_folder_or_a_quarantine_names_the_manifest_to_give(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tab completion stops at the folder: ``--undo Q/RUN/`` said only that it is no regular file,
    with a pattern, though the folder holds exactly one manifest (QA pass 34)."""
    data = tmp_path / "data"
    _pair(data)
    assert main(["-d", str(data), "--no-cache", "-q", "-j", "1", "--remove", "1"]) == 0
    capsys.readouterr()
    quarantine = tmp_path / "data.imgdup-quarantine"
    (run,) = quarantine.iterdir()
    for given in (run, quarantine):
        assert main(["--undo", f"{given}/"]) == 1
        err = capsys.readouterr().err
        assert f"imgdup --undo {run / 'manifest.json'}" in err, err
    assert main(["--undo", str(run / "manifest.json")]) == 0
    assert sorted(p.name for p in data.iterdir()) == ["a.png", "b.png"]


def test_the_undo_command_apply_suggests_for_a_manifest_runs_as_pasted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``imgdup apply MANIFEST`` under "my photos" said "to put its files back, imgdup --undo
    /.../my photos.imgdup-quarantine/.../manifest.json", unquoted: a shell splits it (QA pass 21)."""
    data = tmp_path / "my photos"
    _pair(data)
    assert main(["-d", str(data), "--no-cache", "-q", "-j", "1", "--remove", "1"]) == 0
    capsys.readouterr()
    (manifest,) = tmp_path.glob("my photos.imgdup-quarantine/*/manifest.json")
    assert main(["apply", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert "is a removal manifest, not a plan: to put its files back, imgdup --undo " in err
    command = shlex.split(err.strip().split("to put its files back, ", 1)[1])
    assert command == ["imgdup", "--undo", str(manifest)]
    assert main(command[1:]) == 0
    assert sorted(p.name for p in data.iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize("option", ["--files", "--undo", "--apply", "--montage", "--quarantine", "--tables"])
def test_an_empty_name_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str) -> None:
    """``--undo "$M"`` with M unset ran a plain scan instead; an empty --montage, --quarantine
    (with --remove 1: the default quarantine was used), --files or --tables was dropped silently."""
    _pair(tmp_path / "data")
    with pytest.raises(SystemExit) as exc:
        main(["-d", str(tmp_path / "data"), "--no-cache", "-q", option, ""])
    assert exc.value.code == 2
    assert f"{option} needs a name" in capsys.readouterr().err


def test_apply_verb_with_an_empty_plan_name_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["apply", ""])
    assert exc.value.code == 2 and "--apply needs a name" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--quarantine", "--cache"])
def test_apply_verb_with_an_empty_option_name_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    """``imgdup apply PLAN --quarantine "$Q"`` with Q unset moved the files to the default
    quarantine (and an empty --cache read the default cache): the verb form dropped an empty
    value before the checks that ``--apply PLAN --quarantine ""`` gets (QA pass 20)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # the default cache, if it is used
    data = tmp_path / "data"
    _pair(data)
    plan = tmp_path / "plan.json"
    assert main(["-d", str(data), "--no-cache", "-q", "-j", "1", "--report", str(plan)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["apply", str(plan), "-j", "1", option, ""])
    assert exc.value.code == 2
    assert option in capsys.readouterr().err
    assert sorted(p.name for p in data.iterdir()) == ["a.png", "b.png"]
    assert not (tmp_path / "data.imgdup-quarantine").exists()


@pytest.mark.parametrize(("words", "hint"), [(["{data}"], "-d {data}"), (["undo", "m.json"], "--undo m.json")])
def test_a_folder_or_verb_without_its_option_says_which_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], words: list[str], hint: str
) -> None:
    """``imgdup photos`` (a folder with no -d, as most tools take it) or ``imgdup undo M`` (as
    ``imgdup apply P``) said only "unrecognized arguments" (QA pass 20)."""
    data = tmp_path / "data"
    _pair(data)
    with pytest.raises(SystemExit) as exc:
        main([w.format(data=data) for w in words])
    assert exc.value.code == 2
    assert hint.format(data=data) in capsys.readouterr().err
    assert sorted(p.name for p in data.iterdir()) == ["a.png", "b.png"]


@pytest.mark.parametrize(
    ("mode", "extra", "named"),
    [
        ("--undo", ["--report", "r.json"], "--report"),
        ("--undo", ["--quarantine", "q"], "--quarantine"),
        ("--undo", ["--permanent"], "--permanent"),
        ("--undo", ["--reference", "x"], "--reference"),
        ("--apply", ["--report", "r.json"], "--report"),
        ("--apply", ["--threshold", "2"], "--threshold"),
        ("--apply", ["--montage", "m"], "--montage"),
        ("--apply", ["--keep", "oldest"], "--keep"),
        ("--apply", ["--files", "list.txt"], "--files"),
    ],
)
def test_an_option_the_mode_would_ignore_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mode: str, extra: list[str], named: str
) -> None:
    """``imgdup --undo M --report r.json`` wrote no report and ``--apply P --threshold 2`` applied
    at the plan's threshold, both silently (exit 0)."""
    with pytest.raises(SystemExit) as exc:
        main([mode, str(tmp_path / "x.json"), *extra])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert named in err and "not used" in err


@pytest.mark.parametrize("extra", [["--format", "json"], ["-q"], ["-v"], ["--no-progress"], ["--no-cache", "-j", "1"]])
def test_undo_still_takes_its_own_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    """The check above names only what undo ignores: a missing manifest is still undo's own error."""
    assert main(["--undo", str(tmp_path / "missing.json"), *extra]) == 1
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("verb", [[], ["apply"]])
def test_quiet_and_verbose_together_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: list[str]
) -> None:
    """``-q -v`` ran quietly: -v was dropped without a word."""
    args = [*verb, str(tmp_path / "plan.json")] if verb else ["-d", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:
        main([*args, "-q", "-v"])
    assert exc.value.code == 2 and "-q/--quiet and -v/--verbose exclude each other" in capsys.readouterr().err


ESC_NAME = "a\x1b]0;pwned\x07\x1b[2Jb"  # sets the terminal's title, then clears the screen


@pytest.mark.parametrize(
    "args",
    [
        ["-d", ESC_NAME],  # an error (exit 2)
        ["apply", ESC_NAME + ".json"],  # an error (exit 1)
        ["--undo", ESC_NAME + ".json"],
        ["-d", ".", "--report", ESC_NAME + ".txt"],  # argparse's own usage error
    ],
)
def test_error_messages_show_control_characters_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """A name in an error message reached the terminal raw: an escape sequence in a plan's root,
    a manifest's path or a mistyped name acted on the terminal (the text report escapes them)."""
    monkeypatch.chdir(tmp_path)
    try:
        rc = main([*args, "--no-cache"] if args[0] != "--undo" else args)
    except SystemExit as exc:
        rc = int(exc.code or 0)
    assert rc in (1, 2)
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "a\\x1b]0;pwned\\x07\\x1b[2Jb" in err


def test_a_plan_whose_root_holds_an_escape_sequence_is_refused_with_it_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.json"
    root = f"/nonexistent/{ESC_NAME}"
    doc = {"schema": "imgdup.report/1", "host": platform.node(), "roots": [root], "clusters": [],
           "settings": {"hash": "phash", "threshold": 8}}  # fmt: skip
    plan.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["apply", str(plan), "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "is missing" in err


def test_help_names_what_each_option_takes(capsys: pytest.CaptureFixture[str]) -> None:
    """--help said only "hash side" for --hash-size (5 or 64 are refused: a power of two from 4
    to 32), and that --undo restores a --remove 1 run (an apply run's manifest is undone alike)."""
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--hash-size N hash side, a power of two from 4 to 32" in text
    assert "moved by an earlier --remove 1 or apply run" in text


def test_apply_help_names_the_cache_it_reads(capsys: pytest.CaptureFixture[str]) -> None:
    """apply --help said --cache defaults to "the scan's" cache; a plan records no cache, and apply
    reads the default one unless --cache names another (QA pass 36)."""
    from imgdup.cache import default_cache_path

    with pytest.raises(SystemExit):
        main(["apply", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the scan's" not in text and f"(default {default_cache_path()}" in text


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--threshold", "-1"], "threshold"),  # refused after parsing (UsageError)
        (["--report", "out.unknownext"], "out.unknownext"),  # refused by argparse's error()
        (["--max-pixels", "0"], "--max-pixels"),
        (["--cache", ""], "--cache"),
        (["--hash", "bogus"], "--hash"),
        (["--threshold", "4.5"], "--threshold"),
    ],
)
def test_every_usage_error_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    """Some bad values printed argparse's 9-line usage block before the error, others one line
    (QA pass 36): every one is now the one line that names the option, exit 2."""
    try:
        rc = main(["-d", str(tmp_path), "--no-cache", *args])
    except SystemExit as exc:
        rc = exc.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("imgdup: error: ") and named in err, err


def test_apply_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    """``imgdup apply --version`` said "the following arguments are required: plan" (QA pass 36)."""
    from imgdup import __version__

    with pytest.raises(SystemExit) as exc:
        main(["apply", "--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"imgdup {__version__}"


def test_quiet_leaves_stderr_empty_on_a_clean_run_with_a_report(tmp_path: Path) -> None:
    """-q said "report written to ..." on stderr all the same: a cron job's clean run mailed it."""
    shared_planted_root = tmp_path / "d"
    shared_planted_root.mkdir()
    photo(1).save(shared_planted_root / "a.png")
    photo(1).save(shared_planted_root / "b.jpg", quality=90)
    photo(2).save(shared_planted_root / "c.png")
    report = tmp_path / "r.json"
    run = subprocess.run(
        [sys.executable, "-m", "imgdup", "-d", str(shared_planted_root), "--no-cache", "-q", "--report", str(report)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert report.exists() and run.stderr == ""
    loud = subprocess.run(
        [sys.executable, "-m", "imgdup", "-d", str(shared_planted_root), "--no-cache", "--no-progress",
         "--report", str(report)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "report written to" in loud.stderr


@pytest.mark.parametrize("output", [["--report", "page.html"], ["--montage", "sheets"]])
def test_a_dataset_option_naming_an_image_file_takes_outputs_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], output: list[str]
) -> None:
    """``-d photo.png`` is scanned as a listed file; with an HTML report or montages, whose places
    are checked against the scan's folders first, the same run stopped: "not a directory"."""
    _pair(tmp_path / "data")
    (tmp_path / "single").mkdir()
    photo(1).save(tmp_path / "single" / "one.png")
    out = [output[0], str(tmp_path / output[1])]
    code = main(
        ["-d", str(tmp_path / "single" / "one.png"), "-d", str(tmp_path / "data"), *out, "--no-cache", "-j", "1"]
    )
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / output[1]).exists()
