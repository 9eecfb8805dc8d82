"""Hostile-input campaign: every kind of broken study file in tests/hostile.py, handed to `workbench
validate` and `workbench trial` in a fresh child process each; the wall time and the child's peak memory
(max RSS from wait4) of each rejection, its exit code and whether the message is the expected one.

Targets (issue #15): every rejection exit code 2 with one message, within 2 s and 200 MB. A valid file
is measured the same way as the reference (the interpreter and the imports cost most of both figures).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/hostile_input.py [--repeats 3] [--commands validate,trial]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, save

sys.path.insert(0, str(ROOT))
ROOT = Path(
    os.environ.get("WORKBENCH_CAMPAIGN_ROOT", ROOT)
)  # another checkout to measure (e.g. before a fix)

from tests.conftest import small_study  # noqa: E402
from tests.hostile import CASES  # noqa: E402

MAX_S, MAX_MB = 2.0, 200.0


#: a runaway child (an old version on an alias bomb) is stopped here: 2 GiB of address space, KILL_S
CAP_BYTES, KILL_S = 2 << 30, 60.0


def _cap() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (CAP_BYTES, CAP_BYTES))


#: the child reports its own peak (VmHWM of its address space, which starts afresh at exec): wait4's
#: ru_maxrss would include the parent's size at fork, since Linux carries the high-water mark over exec
WRAP = (
    "import atexit, sys\n"
    "def hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write('\\n@hwm_kb=' + line.split()[1] + '\\n')\n"
    "atexit.register(hwm)\n"
    "from workbench.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def _child(command: str, path: Path) -> tuple[float, float, int, str]:
    """(wall s, max RSS MB, exit code, stderr) of one `workbench <command> <path>` process."""
    import threading

    env = {**os.environ, "PYTHONPATH": str(ROOT), "WORKBENCH_HOME": str(path.parent / "home")}
    env.pop("PYTHONSAFEPATH", None)
    t = time.perf_counter()
    p = subprocess.Popen(
        [sys.executable, "-c", WRAP, command, str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=path.parent,
        env=env,
        preexec_fn=_cap,
    )
    timer = threading.Timer(KILL_S, p.kill)
    timer.start()
    err = p.stderr.read().decode(errors="replace") if p.stderr else ""
    _, status, usage = os.wait4(p.pid, 0)
    timer.cancel()
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    err, marker, hwm = err.rpartition("\n@hwm_kb=")
    if not marker:  # killed before it could report: wait4's figure, an upper bound
        return wall, usage.ru_maxrss / 1024, p.returncode, hwm
    return wall, int(hwm.split()[0]) / 1024, p.returncode, err


def _measure(name: str, data: bytes, expected: str, command: str, repeats: int, folder: Path) -> dict:
    path = folder / "study.yaml"
    path.write_bytes(data)
    runs = [_child(command, path) for _ in range(repeats)]
    wall = max(r[0] for r in runs)
    rss = max(r[1] for r in runs)
    rc, err = runs[-1][2], runs[-1][3]
    ok = (
        rc == 2
        and expected in err
        and "Traceback" not in err
        and err.startswith("error: ")
        and len(err) < 8000
    )
    return {
        "case": name,
        "command": command,
        "bytes": len(data),
        "max_wall_s": round(wall, 3),
        "max_rss_mb": round(rss, 1),
        "exit_code": rc,
        "message_ok": ok,
        "within_limits": ok and wall <= MAX_S and rss <= MAX_MB,
        "message": err.strip()[:300],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="processes per case (the worst is kept)")
    ap.add_argument("--commands", default="validate,trial")
    ap.add_argument("--name", default="hostile_input", help="results file: benchmarks/results/<name>.json")
    ap.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="print the before/after table")
    args = ap.parse_args()
    if args.compare:
        import json

        before, after = (json.loads(Path(f).read_text())["rows"] for f in args.compare)
        print(compare(before, after))
        return 0
    import yaml

    from workbench.tiny_model import ensure_tiny_model

    model = ensure_tiny_model(ROOT / "models" / "tiny-llama")
    text = yaml.safe_dump(small_study(model), sort_keys=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        valid = text.encode()
        for command in args.commands.split(","):
            if command == "validate":
                ref = _measure("(valid file, for reference)", valid, "", command, args.repeats, folder)
                rows.append(
                    {**ref, "message_ok": ref["exit_code"] == 0, "within_limits": ref["exit_code"] == 0}
                )
            for name, build, expected in CASES:
                rows.append(_measure(name, build(text, folder), expected, command, args.repeats, folder))
                r = rows[-1]
                print(
                    f"{command:8} {name:34} {r['max_wall_s']:6.2f} s {r['max_rss_mb']:7.1f} MB  "
                    f"exit {r['exit_code']}  {'ok' if r['within_limits'] else 'OVER OR WRONG'}"
                )
    bad = [r for r in rows if not r["within_limits"]]
    out = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "limits": {"s": MAX_S, "mb": MAX_MB},
        "kinds": len(CASES),
        "rows": rows,
        "failures": len(bad),
    }
    print(
        f"{len(CASES)} kinds x {len(args.commands.split(','))} commands: {len(bad)} over the limits or wrong"
    )
    print(save(args.name, out))
    print(markdown(rows))
    return 1 if bad else 0


def markdown(rows: list[dict]) -> str:
    """The docs/benchmarks.md table: one line per kind, the worst of its commands."""
    by_case: dict[str, list[dict]] = {}
    for r in rows:
        by_case.setdefault(r["case"], []).append(r)
    lines = [
        "| broken file | bytes | commands | exit | worst wall s | worst max RSS MB | message starts |",
        "| --- | ---: | --- | --- | ---: | ---: | --- |",
    ]
    for case, rs in by_case.items():
        msg = rs[0]["message"].split("\n")[1].strip(" -") if "\n" in rs[0]["message"] else ""
        msg = (msg[:70] + " ...") if len(msg) > 70 else msg
        lines.append(
            f"| {case} | {rs[0]['bytes']:,} | {', '.join(r['command'] for r in rs)} | "
            f"{'/'.join(sorted({str(r['exit_code']) for r in rs}))} | {max(r['max_wall_s'] for r in rs):.2f} | "
            f"{max(r['max_rss_mb'] for r in rs):.0f} | {msg.replace('|', '/')} |"
        )
    return "\n".join(lines)


def compare(before: list[dict], after: list[dict]) -> str:
    """docs/benchmarks.md's table: each kind unfixed (validate) and fixed (the worst of its commands)."""
    old = {r["case"]: r for r in before}
    lines = [
        "| broken file | bytes | unfixed: exit, s, MB | fixed: exit, worst s, worst MB | the message now |",
        "| --- | ---: | --- | --- | --- |",
    ]
    cases: dict[str, list[dict]] = {}
    for r in after:
        cases.setdefault(r["case"], []).append(r)
    for case, rs in cases.items():
        o = old.get(case)
        was = f"{o['exit_code']}, {o['max_wall_s']:.2f}, {o['max_rss_mb']:.0f}" if o else "-"
        was += "" if not o or o["exit_code"] != -9 else " (killed at 60 s)"
        now = "/".join(sorted({str(r["exit_code"]) for r in rs}))
        now += f", {max(r['max_wall_s'] for r in rs):.2f}, {max(r['max_rss_mb'] for r in rs):.0f}"
        msg = rs[0]["message"].split("\n")[1].strip(" -") if "\n" in rs[0]["message"] else ""
        msg = ((msg[:80] + " ...") if len(msg) > 80 else msg).replace("|", "/")
        lines.append(f"| {case} | {rs[0]['bytes']:,} | {was} | {now} | {msg} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
