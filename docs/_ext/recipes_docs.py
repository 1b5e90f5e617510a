"""Sphinx helpers for the recipes docs.

- The docstrings are Google style (napoleon reads Args:/Returns:/Raises:) written with
  Markdown inside: ```python fences, tables, `[text](url)` links, lists that follow a
  line without a blank one, code blocks indented after a blank line. `markdown_to_rst`
  turns those into reStructuredText before napoleon sees the docstring.
- `{recipe-defaults}`: a table of each recipe's training defaults and the measured
  reason for each, read from the registry (`recipes.registry.ModelSpec`), so the docs
  say what `recipes train --help` says.
- Every `scripts/bench/results/*.md` must be included by a page under `benchmarks/`; a
  results file without one is a warning (and so fails the `-W` build).
"""

from __future__ import annotations

import pathlib
import re

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.util import logging

logger = logging.getLogger(__name__)

ROOT = pathlib.Path(__file__).resolve().parents[2]

# napoleon's section headers: a line "Args:" stays as it is
_SECTIONS = {
    "args",
    "arguments",
    "attributes",
    "example",
    "examples",
    "keyword args",
    "keyword arguments",
    "kwargs",
    "methods",
    "note",
    "notes",
    "other parameters",
    "parameters",
    "raises",
    "references",
    "return",
    "returns",
    "see also",
    "todo",
    "warning",
    "warnings",
    "warns",
    "yield",
    "yields",
}
_LIST_ITEM = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+\S")
_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*(https?://[^)\s]+)\s*\)")
_CODE = re.compile(r"(?<!`)`[^`\n]+`(?!`)")
_OPENS, _CLOSES = "-:/'\"<([{", "-.,:;!?\\/'\")]}>"
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_section(line: str) -> bool:
    stripped = line.strip()
    return stripped.endswith(":") and stripped[:-1].strip().lower() in _SECTIONS


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|"):
        line = line[:-1]
    return [cell.strip() for cell in line.split("|")]


def _table(rows: list[str], pad: str) -> list[str]:
    header, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    out = [f"{pad}.. list-table::", f"{pad}   :header-rows: 1", ""]
    for row in [header, *body]:
        row = row + [""] * (len(header) - len(row))
        for i, cell in enumerate(row[: len(header)]):
            out.append(f"{pad}   {'* -' if i == 0 else '  -'} {cell}".rstrip())
    return [*out, ""]


def markdown_to_rst(lines: list[str]) -> list[str]:
    """Rewrites the Markdown of a docstring (already dedented, one line a string) as
    reStructuredText, leaving napoleon's sections and plain text as they are."""
    text = _LINK.sub(lambda m: f"`{m.group(1)} <{m.group(2)}>`__", "\n".join(lines))
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    list_indent = None  # indentation of the list markers while inside a list
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        pad = " " * _indent(line)
        previous = out[-1] if out else ""
        if stripped.startswith("```"):  # a fenced code block
            language = stripped[3:].strip() or "text"
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i][len(pad) :] if lines[i].startswith(pad) else lines[i].lstrip())
                i += 1
            out += ["", f"{pad}.. code-block:: {language}", ""]
            out += [f"{pad}   {b}".rstrip() for b in block]
            out.append("")
            i += 1
            continue
        if stripped.startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):  # a table
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out += ["", *_table(rows, pad)]
            continue
        item = _LIST_ITEM.match(line)
        if item:
            if previous.strip() and not _LIST_ITEM.match(previous) and list_indent is None:
                out.append("")  # a list needs a blank line before it
            list_indent = len(item.group(1))
        elif stripped and list_indent is not None and _indent(line) <= list_indent:
            if previous.strip():
                out.append("")  # the list ends: a blank line after it
            list_indent = None
        elif (
            stripped
            and not previous.strip()
            and list_indent is None
            and _indent(line) >= 4
            and out
            and _last_text_indent(out) == 0
            and not _is_section(_last_text(out))
            and not _last_text(out).lstrip().startswith("..")
        ):  # Markdown's indented code block
            block_indent = _indent(line)
            block = []
            while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) >= block_indent):
                block.append(lines[i][block_indent:])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += [".. code-block:: text", ""] + [f"   {b}".rstrip() for b in block] + [""]
            continue
        if not stripped and list_indent is not None:
            # a blank line inside a list keeps it open only if an item or a continuation follows
            following = next((x for x in lines[i + 1 :] if x.strip()), "")
            if not (_LIST_ITEM.match(following) or _indent(following) > list_indent):
                list_indent = None
        out.append(_unglue(line))
        i += 1
    return out


def _unglue(line: str) -> str:
    """`code`s -> `code`\\ s: reStructuredText starts inline markup only after a space or an
    opening mark and ends it only before a space or punctuation, so anything else glued to the
    backquotes (a letter, `a`..`b`) gets an escaped space, which renders as nothing."""

    def fix(match):
        span, start, end = match.group(0), match.start(), match.end()
        if start and not (line[start - 1].isspace() or line[start - 1] in _OPENS):
            span = "\\ " + span
        if end < len(line) and not (line[end].isspace() or line[end] in _CLOSES):
            span += "\\ "
        return span

    return _CODE.sub(fix, line)


def _last_text(out: list[str]) -> str:
    return next((x for x in reversed(out) if x.strip()), "")


def _last_text_indent(out: list[str]) -> int:
    return _indent(_last_text(out))


def _process_docstring(app, what, name, obj, options, lines):
    lines[:] = markdown_to_rst(list(lines))


def _inline(text: str) -> nodes.paragraph:
    """A paragraph of `text` with its `code` spans as literals."""
    paragraph = nodes.paragraph()
    for i, part in enumerate(text.split("`")):
        if part:
            paragraph += nodes.literal(part, part) if i % 2 else nodes.Text(part)
    return paragraph


def _table_node(header: list[str], rows: list[list[str]], widths: list[int]) -> nodes.table:
    table = nodes.table(classes=["recipe-defaults"])
    group = nodes.tgroup(cols=len(header))
    table += group
    group += [nodes.colspec(colwidth=w) for w in widths]
    for part, lines in ((nodes.thead(), [header]), (nodes.tbody(), rows)):
        group += part
        for cells in lines:
            row = nodes.row()
            for cell in cells:
                entry = nodes.entry()
                entry += _inline(cell)
                row += entry
            part += row
    return table


class RecipeDefaults(Directive):
    """`{recipe-defaults} NAME`: the recipe's defaults over `recipes.config.DEFAULTS` and
    the measured reasons; without NAME, one row per setting of every recipe."""

    optional_arguments = 1

    def run(self):
        from recipes.registry import get_spec, list_models

        names = [self.arguments[0]] if self.arguments else list_models()
        rows = []
        for name in names:
            spec = get_spec(name)
            defaults = {k: v for k, v in spec.defaults.items() if k != "model_args"}
            defaults.update(spec.defaults.get("model_args", {}))
            for key, value in defaults.items():
                where = key if key in spec.defaults else f"model_args: {key}"
                row = [f"`{where}`", f"`{value!r}`", spec.reasons.get(key, "")]
                rows.append(row if self.arguments else [f"`{name}`", *row])
            for form, values in spec.data_defaults.items():
                settings = {k: v for k, v in values.items() if k != "model_args"}
                settings.update(values.get("model_args", {}))
                for key, value in settings.items():
                    where = key if key in values else f"model_args: {key}"
                    row = [f"`{where}` (on {form})", f"`{value!r}`", spec.data_reasons.get(form, {}).get(key, "")]
                    rows.append(row if self.arguments else [f"`{name}`", *row])
        header = ["setting", "default", "why (measured)"]
        widths = [20, 15, 65]
        if not self.arguments:
            header, widths = ["recipe", *header], [10, 20, 15, 55]
        if not any(row[-1] for row in rows):  # no measured reasons: no empty column
            header, widths, rows = header[:-1], widths[:-1], [row[:-1] for row in rows]
        return [_table_node(header, rows, widths)]


def _check_benchmarks(app, env):
    """Every results file has a page that includes it."""
    pages = ROOT / "docs" / "benchmarks"
    included = "\n".join(p.read_text(encoding="utf-8") for p in pages.glob("*.md"))
    for result in sorted((ROOT / "scripts" / "bench" / "results").glob("*.md")):
        if f"scripts/bench/results/{result.name}" not in included:
            logger.warning(
                f"scripts/bench/results/{result.name} is on no page: add docs/benchmarks/{result.stem}.md with an "
                f"{{include}} of it and put it in docs/benchmarks/index.md's toctree",
                type="recipes",
                subtype="benchmarks",
            )


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)  # before napoleon (500)
    app.add_directive("recipe-defaults", RecipeDefaults)
    app.connect("env-check-consistency", _check_benchmarks)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
