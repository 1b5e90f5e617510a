"""The docs' code works: every ```python block of README.md and docs/**/*.md runs, every `recipes ...`
command of a shell block parses with the command's own parser, every relative link of README.md leads
to a file, and the configuration page names every setting.

Python blocks run in this process (`exec`), each in a fresh temporary folder that holds the bundled
digits at `data/digits.npz` and a finished one-epoch MLP run at `runs/mlp1` (trained once, only for
the blocks that use it). A comment on the line before a block changes that, used sparingly:
`<!-- not-tested: reason -->` for a block that cannot run here, `<!-- slow-test: reason -->` for one
that takes more than a few seconds (marked `slow`).
"""

from __future__ import annotations

import contextlib
import io
import pathlib
import re
import shlex
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts)]
SHELLS = {"bash", "sh", "shell", "console"}
NOT_TESTED = re.compile(r"<!--\s*not-tested:\s*\S.*-->")
SLOW_TEST = re.compile(r"<!--\s*slow-test:\s*\S.*-->")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


class Block:
    """A fenced code block of a Markdown page."""

    def __init__(self, path: pathlib.Path, line: int, language: str, source: str, before: str):
        self.path, self.line, self.language, self.source = path, line, language, source
        self.skip = NOT_TESTED.search(before) and before.strip()
        self.slow = bool(SLOW_TEST.search(before))

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: pathlib.Path) -> list[Block]:
    """The fenced code blocks of `path`, each with the line before it (for the comments above)."""
    found, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, info = opening["fence"], opening["info"].strip()
        body, start = [], i + 1
        i += 1
        while i < len(lines) and not re.match(rf"^ {{0,3}}{fence[0]}{{{len(fence)},}}\s*$", lines[i]):
            body.append(lines[i])
            i += 1
        i += 1
        before = next((x for x in reversed(lines[: start - 1]) if x.strip()), "")
        language = info.split()[0].lower() if info else ""
        found.append(Block(path, start, language, "\n".join(body) + "\n", before))
    return found


ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]
PYTHON = [b for b in ALL_BLOCKS if b.language == "python"]
SHELL = [b for b in ALL_BLOCKS if b.language in SHELLS]


def _param(block: Block):
    marks = []
    if block.skip:
        marks.append(pytest.mark.skip(reason=block.skip))
    if block.slow:
        marks.append(pytest.mark.slow)
    return pytest.param(block, id=block.id, marks=marks)


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """A finished one-epoch MLP run on the bundled digits: `runs/mlp1` of the examples."""
    import recipes
    from recipes.config import resolve

    run_dir, _ = recipes.train(
        resolve("mlp", flags={"epochs": 1}), tmp_path_factory.mktemp("docs") / "mlp1", verbose=0, log=lambda *a: None
    )
    return pathlib.Path(run_dir)


@pytest.mark.parametrize("block", [_param(b) for b in PYTHON])
def test_python_block_runs(block, tmp_path, monkeypatch, request):
    (tmp_path / "data").mkdir()
    shutil.copy(ROOT / "data" / "digits.npz", tmp_path / "data" / "digits.npz")
    if "runs/mlp1" in block.source:
        shutil.copytree(request.getfixturevalue("mlp_run"), tmp_path / "runs" / "mlp1")
    monkeypatch.chdir(tmp_path)
    code = compile(block.source, block.id, "exec")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(code, {"__name__": "__docs__"})


def commands(source: str) -> list[list[str]]:
    """The `recipes` commands of a shell block, as argument lists after `recipes` (or `scripts/train.py`,
    which is `recipes train`): lines joined at a trailing backslash, comments dropped, split at `&&`,
    `||`, `;` and `|`, variable assignments and `srun`/`exec` in front skipped."""
    found = []
    for line in source.replace("\\\n", " ").splitlines():
        words, command = shlex.split(line, comments=True), []
        for word in [*words, ";"]:
            if word not in ("&&", "||", ";", "|"):
                command.append(word)
                continue
            while command and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", command[0]) or command[0] in ("srun", "exec")):
                command.pop(0)
            if command and (command[0] == "recipes" or command[0].endswith("/recipes")):
                found.append(command[1:])
            elif len(command) > 1 and command[0].endswith("python") and command[1].endswith("scripts/train.py"):
                found.append(["train", *command[2:]])
            command = []
    return found


def _parse_error(args: list[str]) -> str | None:
    """Why `recipes ARGS` does not parse, or None."""
    from recipes.cli import make_parser

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            parsed = make_parser().parse_args(args)
    except SystemExit as e:
        return f"`recipes {shlex.join(args)}` does not parse (exit {e.code}): {stderr.getvalue().strip()}"
    if parsed.command == "launch":  # the job's own command, after `--`
        job = parsed.job_command[1:] if parsed.job_command[:1] == ["--"] else parsed.job_command
        return _parse_error(job) if job else "`recipes launch` without a command"
    return None


def test_shell_blocks_commands_parse():
    """One test for every block (each test costs a Keras clean-up here): the failures are listed together."""
    failures = []
    for block in SHELL:
        for args in commands(block.source):
            if "-h" in args or "--help" in args:
                continue
            error = _parse_error(args)
            if error:
                failures.append(f"{block.id}: {error}")
    assert not failures, "\n".join(failures)


def test_shell_blocks_have_recipes_commands():
    """The extraction finds the commands (a regex that matched nothing would pass every block)."""
    found = [args for b in SHELL for args in commands(b.source)]
    assert len(found) > 50
    assert ["train", "mlp"] in found
    block = "A=1 B=2 \\\n  recipes train vgg16 --epochs 2  # comment\nrecipes list && tensorboard --logdir runs\n"
    assert commands(block) == [["train", "vgg16", "--epochs", "2"], ["list"]]


def test_readme_links_lead_to_files():
    readme = ROOT / "README.md"
    missing = []
    for target in LINK.findall(readme.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, or a heading of the README itself
        path = target.split("#", 1)[0]
        if not (readme.parent / path).exists():
            missing.append(target)
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_readme_length():
    """The README stays an entry point; the rest lives in docs/."""
    assert 150 <= len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def test_configuration_page_names_every_setting():
    from recipes.config import DEFAULTS

    page = (ROOT / "docs" / "reference" / "configuration.md").read_text(encoding="utf-8")
    table = {line.split("|")[1].strip().strip("`") for line in page.splitlines() if line.startswith("| `")}
    assert set(DEFAULTS) <= table, f"settings missing from docs/reference/configuration.md: {set(DEFAULTS) - table}"
