"""Broken study files, one builder per kind of mistake: shared by tests/test_hostile_input.py and the
campaign in benchmarks/hostile_input.py. Each case is (name, builder, what the message must say); a
builder takes a valid study's YAML text and the folder to write into, and returns the file's bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Builder = Callable[[str, Path], bytes]


def _replace(old: str, new: str) -> Builder:
    def build(text: str, _: Path) -> bytes:
        assert old in text, old
        return text.replace(old, new, 1).encode()

    return build


def _sub(pattern: str, new: str) -> Builder:
    import re

    return lambda text, _: re.sub(pattern, new, text, count=1).encode()


def _append(extra: str) -> Builder:
    return lambda text, _: (text + extra).encode()


def _bomb(levels: int = 9, width: int = 9) -> Builder:
    """Nested anchors: each level repeats the previous one `width` times (9**9 values expanded)."""
    lines = [f"x0: &x0 [{', '.join(['1'] * width)}]"]
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * width)}]" for i in range(1, levels)]

    def build(text: str, _: Path) -> bytes:
        body = text.replace(
            "max_batch_size:\n    choices:", f"max_batch_size:\n    choices: *x{levels - 1}\n    old:"
        )
        return ("\n".join(lines) + "\n" + body).encode()

    return build


def _knob_bomb(text: str, _: Path) -> bytes:
    """The alias bomb inside a knob's choices, where it is valid YAML and a valid study up to the knob
    check (which, unfixed, rendered the expanded value into its message: the hang of issue #15)."""
    import re

    levels = ["&a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    choices = "    choices: [" + ", ".join(levels) + "]\n"
    return re.sub(r"    choices:\n(    - .*\n)+", lambda _: choices, text, count=1).encode()


def _nested(depth: int) -> Builder:
    return _append("deep: " + "[" * depth + "]" * depth + "\n")


def _big_file(text: str, _: Path) -> bytes:
    return (text + "# " + "x" * 5_000_000 + "\n").encode()


def _many_keys(n: int) -> Builder:
    """`n` unknown knobs, each an error: the message lists 20, and locating them must stay linear."""

    def build(text: str, _: Path) -> bytes:
        knobs = "".join(f"  k{i}: 1\n" for i in range(n))
        return text.replace("search_space:\n", "search_space:\n" + knobs, 1).encode()

    return build


def _long_list(text: str, _: Path) -> bytes:
    """Just under the size limit: half a million values written out in one flow list."""
    return (text + "extra: [" + "1," * 500_000 + "1]\n").encode()


def _latin1(text: str, _: Path) -> bytes:
    return text.replace("name: t", "name: t\ndescription: Stra\xdfe", 1).encode("latin-1")


def _utf16(text: str, _: Path) -> bytes:
    return text.encode("utf-16")


def _huge_int(text: str, _: Path) -> bytes:
    return text.replace("num_requests: 8", "num_requests: " + "9" * 5000, 1).encode()


def _long_string(text: str, _: Path) -> bytes:
    return text.replace("page_size: 16", "page_size: " + "x" * 500_000, 1).encode()


def _missing_model(text: str, folder: Path) -> bytes:
    return _path_swap(text, str(folder / "no-such-model"))


def _path_swap(text: str, new: str) -> bytes:
    import re

    return re.sub(r"(?m)^  path: .*$", f"  path: {new}", text, count=1).encode()


def _model_is_file(text: str, folder: Path) -> bytes:
    f = folder / "model.bin"
    f.write_bytes(b"x")
    return _path_swap(text, str(f))


CASES: list[tuple[str, Builder, str]] = [
    ("alias bomb", _bomb(), "aliases (*name) expanded this holds more than 20,000 values"),
    ("alias bomb in a knob", _knob_bomb, "aliases (*name) expanded this holds more than 20,000 values"),
    (
        "recursive alias",
        _append("loop: &loop [1, *loop]\n"),
        "an alias refers to a collection that contains it",
    ),
    ("deep nesting", _nested(100_000), "nested deeper than 50 levels"),
    ("5 MB file", _big_file, "a study file may have at most 1,048,576"),
    ("9,000 unknown knobs", _many_keys(9_000), "unknown knob for engine 'hf'"),
    ("40,000 keys", _many_keys(40_000), "more than 20,000 values; a study needs a few hundred"),
    ("half a million values", _long_list, "more than 20,000 values; a study needs a few hundred"),
    ("latin-1 bytes", _latin1, "is not UTF-8; save the file as UTF-8"),
    ("UTF-16 file", _utf16, "is not UTF-8; save the file as UTF-8"),
    ("duplicated top-level key", _append("name: other\n"), "name: key given twice (first on line 1)"),
    (
        "duplicated nested key",
        _replace("  num_requests: 8\n", "  num_requests: 8\n  num_requests: 9\n"),
        "num_requests: key given twice",
    ),
    (
        "yes for a number",
        _replace("num_requests: 8", "num_requests: yes"),
        "workload.num_requests: got yes; a number is expected, not a boolean",
    ),
    (
        "on for a float bound",
        _replace("low: 0.1", "low: on"),
        "search_space.kv_cache_fraction.low: got on; a number is expected, not a boolean",
    ),
    ("NaN bound", _replace("low: 0.1", "low: .nan"), "search_space.kv_cache_fraction.low"),
    ("infinite timeout", _sub(r"timeout_s: \S+", "timeout_s: .inf"), "trial.timeout_s"),
    ("300-character name", _replace("name: t", "name: " + "n" * 300), "name: got 'nnnn"),
    ("name with a slash", _replace("name: t", "name: a/b"), "name: got 'a/b'; String should match pattern"),
    (
        "unknown sampler option",
        _append("sampler: {name: tpe, options: {bogus: 1}}\n"),
        "sampler.options.bogus: unknown option of optuna.samplers.TPESampler; allowed: consider_prior",
    ),
    (
        "sampler option taking a function",
        _append("sampler: {name: tpe, options: {gamma: 0.1}}\n"),
        "gamma takes a Python object",
    ),
    (
        "sampler option of the wrong type",
        _append("sampler: {name: tpe, options: {n_startup_trials: ten}}\n"),
        "sampler.options.n_startup_trials: got 'ten'; n_startup_trials must be int",
    ),
    (
        "seed inside sampler options",
        _append("sampler: {name: tpe, options: {seed: 3}}\n"),
        "give the seed as sampler.seed",
    ),
    (
        "options for the random sampler",
        _append("sampler: {name: random, options: {x: 1}}\n"),
        "sampler 'random' takes no options",
    ),
    ("missing local model", _missing_model, "model.path: no such folder"),
    ("model path is a file", _model_is_file, "model.path: not a folder"),
    (
        "missing dataset file",
        _replace("workload:\n", "workload:\n  dataset: {path: no-such.jsonl}\n"),
        "workload.dataset.path: no such file",
    ),
    (
        "missing accuracy data",
        _append("accuracy: {data_path: no-such-folder}\n"),
        "accuracy.data_path: no such folder",
    ),
    (
        "absurd num_requests",
        _replace("num_requests: 8", "num_requests: 1000000000000000000000000000000"),
        "workload.num_requests: got 1000000000000000000000000000000; Input should be less than or equal to 1000000",
    ),
    ("5000-digit number", _huge_int, "a value cannot be read"),
    (
        "too many prompt tokens",
        _sub(
            r"num_requests: 8(\n.*)*?\n  input_len:\n(    .*\n)+",
            "num_requests: 900000\n  input_len: 100000\n",
        ),
        "prompt tokens; at most 100,000,000",
    ),
    (
        "absurd output length",
        _replace("output_len: 8", "output_len: 1000000000"),
        "workload.output_len: got 1000000000; Input should be less than or equal to 1048576",
    ),
    (
        "misspelt range key",
        _replace("high: 0.9", "hgih: 0.9"),
        "search_space.kv_cache_fraction.hgih: unknown key; allowed keys: low, high, step, log",
    ),
    (
        "misspelt length key",
        _replace("min: 8", "mni: 8"),
        "workload.input_len.mni: unknown key; allowed keys: dist, min, max",
    ),
    (
        "list as a knob",
        _replace("page_size: 16", "page_size: [16, 32]"),
        "search_space.page_size: a knob is a fixed value",
    ),
    ("half-million-character value", _long_string, "is not allowed for page_size"),
    ("python object tag", _append("x: !!python/object/apply:os.system ['true']\n"), "not valid YAML"),
    ("two documents", _append("---\nname: again\n"), "not valid YAML"),
    ("tab indentation", _replace("  num_requests: 8", "\tnum_requests: 8"), "not valid YAML"),
    ("top level is a list", lambda text, _: b"- a\n- b\n", "must hold a mapping"),
    ("empty file", lambda text, _: b"", "must hold a mapping"),
]
