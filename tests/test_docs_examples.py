"""Every example of every ``gaiarvs-cnn ... --help`` text runs, in order, as a chain.

The examples are parsed out of the click help texts themselves (the lines starting with
``gaiarvs-cnn`` in each command's ``Example(s)`` block), so a changed help text is tested
as it is printed. They run in one scratch directory, command after command in the order of
`COMMAND_ORDER` (the order of the tutorial: simulate, ingest, train, shard, catalogue,
validation; the overview of ``gaiarvs-cnn --help`` last). Every input of an example must
therefore be the output of an earlier one, or a file the user brings (`USER_FILES`, made
here from the real Gaia DR3 fixtures of ``tests/data/gaia_real``). An example repeated
verbatim in another help text runs once.

Sizes are shrunk through `SIZES` (an option's value as printed -> the value run) and
`ADDED_OPTIONS` (options added when the example does not give them); nothing else of an
example is changed. Examples that need the network (``fetch``, ``run``, ``--source archive``) and
those that read an output of such an example are marked ``remote_data``; `SKIPPED` lists,
with the reason, the only example that does not run.
"""
from __future__ import annotations

import glob
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from astropy.table import Table
from click.testing import CliRunner

from gaiarvs_cnn.cli import main

DATA = Path(__file__).parent / "data" / "gaia_real"
PROGRAM = "gaiarvs-cnn"

#: Order in which the help texts' examples run (the tutorial's chain); "" is the main group.
COMMAND_ORDER = ("config", "simulate", "fetch", "fetch gaia", "fetch reference", "fetch bulk",
                 "store", "store ingest", "store info", "train", "calibrate",
                 "shard", "manifest", "manifest create", "manifest validate", "produce-catalog",
                 "predict", "fit-spectra", "validate", "run", "")

#: (option, value as printed in the help) -> value run by the test (tiny sizes).
SIZES = {
    ("--n", "100000"): "200",          # simulate: observed survey
    ("--n", "20000"): "160",           # simulate: training stars
    ("--n", "5000"): "100",
    ("--n", "3000"): "200",            # simulate: held-out calibration stars
    ("--n-stars", "2000"): "150",      # produce-catalog
    ("--stars-per-shard", "20000"): "100",
    ("--splits", "2"): "1",            # train: 1 split x 2 models instead of 2 x 2 / 7 x 4
    ("--models", "2"): "1",
    ("--members", "0-13"): "0",        # the two halves of 28 members -> of 2 members
    ("--members", "14-27"): "1",
    ("--workers", "4"): "1",           # Dask workers of predict (local cluster)
    ("--workers", "2"): "1",           # train: Dask workers, tests/model/test_training.py
}

#: command -> options added when the example does not give the option (the defaults the
#: examples rely on are too big for a test: 20 000 simulated stars, 7 x 4 members of the
#: paper network for 200 epochs, a t-SNE reference of >= 302 spectra, PNG and PDF figures).
ADDED_OPTIONS = {
    "produce-catalog": {"--n-stars": "200"},
    "train": {"--splits": "1", "--models": "2", "--epochs": "1",
              "--config": "tiny_network.json", "--no-tsne": None},
    "calibrate": {"--min-per-bin": "10"},
    "validate": {"--formats": "none"},   # the figures are tested in validation/ (pytest-mpl)
}

#: Examples not run, with the reason.
SKIPPED = {
    "gaiarvs-cnn train --demo": "rewrites the demo bundle shipped inside the package "
                                "(minutes of training); see tests/model/test_demo.py",
}

#: Options whose value is a file or directory the example writes.
OUTPUT_OPTIONS = ("-o", "--output", "--out")
#: Positional arguments that are outputs: command -> index among the positional arguments.
OUTPUT_ARGUMENTS = {"shard": 1, "manifest create": 0}

#: The tiny network of ``--config tiny_network.json`` (as in tests/conftest.py).
TINY_NETWORK = {"conv_filters": [4, 4, 2], "rvs_dense": 8, "phot_dense": 4, "xp_dense": 4,
                "head_dense": [8, 4], "jit_compile": False, "batch_size": 64}

KOI_ID, STAR_ID = 2131314401800665344, 863983115982280448


def _xp_of_star(path: Path) -> None:
    """Real XP_CONTINUOUS coefficients (GaiaXPy fixture) re-labelled as the RVS star."""
    xp = Table.read(DATA / "xp_continuous" / "XP_CONTINUOUS_RAW.ecsv")[:1]
    xp["source_id"] = [STAR_ID]
    xp.write(path, format="ascii.ecsv")


def _gaia_source(path: Path) -> None:
    """A real gaia_source VOTable row (astroquery fixture) re-labelled as the RVS star."""
    table = Table.read(DATA / "astroquery_gaia" / "1710099405832VAL-result.vot")[:1]
    table["SOURCE_ID"] = [STAR_ID]
    table.write(path, format="votable")


#: Files a user brings (not written by any example) -> how the test makes them.
USER_FILES = {
    f"RVS-Gaia DR3 {STAR_ID}.fits": lambda p: p.write_bytes(
        (DATA / "rvs_datalink_fits" / p.name).read_bytes()),
    f"XP_CONTINUOUS-Gaia DR3 {STAR_ID}.ecsv": _xp_of_star,
    "gaia_source.vot": _gaia_source,
    "ids.txt": lambda p: p.write_text(f"# Gaia DR3 source_id\n{STAR_ID}\n{KOI_ID}\n"),
    "tiny_network.json": lambda p: p.write_text(json.dumps(TINY_NETWORK)),
}


@dataclass
class Example:
    """One example command of a help text."""

    command: str                      # "store ingest": the command whose help shows it
    text: str                         # as printed, without the trailing comment
    args: list[str] = field(default_factory=list)

    @property
    def name(self) -> list[str]:
        """The sub-command path of the example itself (``["store", "info"]``)."""
        words = []
        group = main
        for arg in self.args:
            if not isinstance(group, click.Group) or arg not in group.commands:
                break
            words.append(arg)
            group = group.commands[arg]
        return words

    @property
    def remote(self) -> bool:
        # ``run`` chains the fetches: its examples need the archives too.
        return (self.name[:1] in (["fetch"], ["run"])
                or "archive" in _values(self.args, "--source"))


def _values(args: list[str], option: str) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a == option]


def _commands(group: click.Group = main, prefix: str = ""):
    """``(name, command)`` of the group and of every (sub-)command below it.

    Hidden commands (``store convert``, kept only to explain that it was removed) have
    no help text to show and no example.
    """
    yield prefix, group
    for name, cmd in group.commands.items():
        full = f"{prefix} {name}".strip()
        if cmd.hidden:
            continue
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, full)
        else:
            yield full, cmd


def help_text(name: str) -> str:
    """The ``--help`` output of ``gaiarvs-cnn <name>``."""
    ctx = None
    cmd = main
    for word in [PROGRAM, *name.split()]:
        if word != PROGRAM:
            cmd = cmd.commands[word]
        ctx = click.Context(cmd, info_name=word, parent=ctx, max_content_width=100,
                            terminal_width=100)
    return cmd.get_help(ctx)


def parse_examples(name: str) -> list[Example]:
    """The example commands of the help of ``name``, joined over continuation lines."""
    out, pending, in_block = [], "", False
    for line in help_text(name).splitlines():
        stripped = line.strip()
        if stripped.startswith("Example"):
            in_block = True
            continue
        if not in_block:
            continue
        if not stripped:
            in_block = False
            continue
        if not pending and not stripped.startswith(PROGRAM + " "):
            continue
        pending = f"{pending} {stripped}".strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:             # an open quote: the command continues
            continue
        text = shlex.join(words)
        out.append(Example(name, text, words[1:]))
        pending = ""
    assert not pending, f"unfinished example in '{PROGRAM} {name} --help': {pending}"
    return out


def command_order() -> list[str]:
    """`COMMAND_ORDER`, then commands it does not list yet (before the main group)."""
    names = [name for name, _ in _commands()]
    known = [n for n in COMMAND_ORDER if n in names and n]
    return [*known, *sorted(set(names) - set(known) - {""}), ""]


def all_examples() -> list[Example]:
    seen, out = set(), []
    for name in command_order():
        for ex in parse_examples(name):
            if ex.text not in seen:
                seen.add(ex.text)
                out.append(ex)
    return out


def shrink(example: Example) -> list[str]:
    """The arguments actually run: `SIZES` applied, `ADDED_OPTIONS` added."""
    args = list(example.args)
    for i, arg in enumerate(args[:-1]):
        args[i + 1] = SIZES.get((arg, args[i + 1]), args[i + 1])
    added = ADDED_OPTIONS.get(" ".join(example.name), {})
    if example.name == ["produce-catalog"] and "--store" in args:
        added = {}
    for option, value in added.items():
        if option not in args:
            args += [option] if value is None else [option, value]
    expanded = []
    for arg in args:                    # as a shell would expand a pattern
        matches = sorted(glob.glob(arg)) if any(c in arg for c in "*?[") else []
        expanded += matches or [arg]
    return expanded


def _command(words: list[str]) -> click.Command:
    cmd = main
    for word in words:
        cmd = cmd.commands[word]
    return cmd


def outputs(example: Example) -> list[str]:
    """The files and directories ``example`` writes (given, or the option's default)."""
    args, found = example.args, []
    for param in _command(example.name).params:
        if isinstance(param, click.Option) and set(param.opts) & set(OUTPUT_OPTIONS):
            given = [v for opt in param.opts for v in _values(args, opt)]
            found += given or ([str(param.default)] if param.default is not None else [])
    index = OUTPUT_ARGUMENTS.get(" ".join(example.name))
    if index is not None:
        positional = [a for a in args[len(example.name):] if not a.startswith("-")]
        found.append(positional[index])
    return [f.rstrip("/") for f in found]


def inputs_from(example: Example, producers: dict[str, Example]) -> list[Example]:
    """The earlier examples whose outputs ``example`` reads."""
    mine = set(outputs(example))
    found = []
    for arg in example.args:
        for token in (arg, arg.partition("=")[2]):
            token = token.rstrip("/")
            for path, producer in producers.items():
                if path not in mine and (token == path or token.startswith(path + "/")):
                    found.append(producer)
    return found


def _plan() -> list[tuple[Example, str | None, bool]]:
    """``(example, reason skipped or None, needs the network)`` in the order run."""
    producers, plan = {}, []
    for ex in all_examples():
        remote = ex.remote or any(p.remote for p in inputs_from(ex, producers))
        plan.append((ex, SKIPPED.get(ex.text), remote))
        for path in outputs(ex):
            producers[path] = ex
    return plan


PLAN = _plan()


class Chain:
    """Runs the examples in order in one scratch directory; remembers each result."""

    def __init__(self, root: Path):
        self.root = root
        self.results: dict[str, object] = {}
        for name, make in USER_FILES.items():
            make(root / name)

    def run_until(self, index: int, remote_allowed: bool):
        runner = CliRunner()
        for ex, skipped, remote in PLAN[:index + 1]:
            if ex.text in self.results or skipped or (remote and not remote_allowed):
                continue
            self.results[ex.text] = runner.invoke(main, shrink(ex))
        return self.results[PLAN[index][0].text]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    return Chain(tmp_path_factory.mktemp("help_examples"))


def test_command_order_lists_every_command():
    names = {name for name, _ in _commands()}
    assert names == set(COMMAND_ORDER), (
        "COMMAND_ORDER must list every command, in the order its examples chain; missing "
        f"or unknown: {sorted(names ^ set(COMMAND_ORDER))}")


def test_every_command_has_examples():
    for name, _ in _commands():
        assert parse_examples(name), f"'{PROGRAM} {name} --help' has no example"


def test_examples_chain():
    """Every file an example reads is written by an earlier example or is a user file."""
    producers = {}
    for ex, skipped, _ in PLAN:
        if skipped:
            continue
        for arg in shrink(ex)[len(ex.name):]:
            looks_like_file = "." in Path(arg).name and not arg.startswith("-") and (
                Path(arg).suffix in (".h5", ".fits", ".vot", ".json", ".ecsv", ".txt", ".xml"))
            if looks_like_file and arg not in outputs(ex) and not inputs_from(
                    Example(ex.command, arg, [arg]), producers):
                assert arg in USER_FILES, (
                    f"{ex.text!r} ({PROGRAM} {ex.command} --help) reads {arg!r}, which no "
                    "earlier example writes and USER_FILES does not provide")
        for path in outputs(ex):
            producers[path] = ex


def test_main_examples_are_the_commands_examples():
    """The overview of ``gaiarvs-cnn --help`` repeats examples of the commands' own help."""
    own = {ex.text for name in command_order() if name for ex in parse_examples(name)}
    for ex in parse_examples(""):
        assert ex.text in own, f"{ex.text!r} is in '{PROGRAM} --help' only"


def _params():
    for i, (ex, skipped, remote) in enumerate(PLAN):
        marks = [pytest.mark.remote_data] if remote else []
        if skipped:
            marks.append(pytest.mark.skip(reason=skipped))
        yield pytest.param(i, id=f"{i:02d} {ex.text[len(PROGRAM) + 1:]}"[:90], marks=marks)


@pytest.mark.slow
@pytest.mark.parametrize("index", _params())
def test_help_example_runs(index, chain, monkeypatch, request):
    ex = PLAN[index][0]
    monkeypatch.chdir(chain.root)
    remote_allowed = request.config.getoption("remote_data", "none") == "any"
    result = chain.run_until(index, remote_allowed)
    assert result.exit_code == 0, (
        f"'{ex.text}' ({PROGRAM} {ex.command} --help), run as "
        f"'{shlex.join([PROGRAM, *shrink(ex)])}', exited with {result.exit_code}:\n"
        f"{result.output}\n{result.exception!r}")
    for path in outputs(ex):
        assert (chain.root / path).exists(), f"'{ex.text}' did not write {path}"


@pytest.mark.slow
def test_rerun_example_names_the_flag(chain, monkeypatch):
    """Running an example twice is refused in the command's terms (--overwrite)."""
    index = next(i for i, (ex, _, _) in enumerate(PLAN) if ex.name == ["simulate"])
    ex = PLAN[index][0]
    monkeypatch.chdir(chain.root)
    assert chain.run_until(index, remote_allowed=False).exit_code == 0
    again = CliRunner().invoke(main, shrink(ex))
    assert again.exit_code == 1, again.output
    assert "--overwrite" in again.output and "overwrite=True" not in again.output, again.output
