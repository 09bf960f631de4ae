"""What the roles and the docs repeat of the catalog, rendered from it: a control is written once.

Two kinds of output. Parts of hand-written files sit between marker lines that name a renderer:

    # casemate-generated: tags docker_daemon docker_daemon_ids
    tags: &docker_daemon_ids
      [cis_docker_2_2, cis_docker_2_3, ...]
    # casemate-generated: end

(in Markdown the markers are HTML comments, `<!-- casemate-generated: ... -->`). Whole files are
the per-control reference pages, `docs/controls/<benchmark>.md`, one per benchmark.

`python -m casemate.generated` (`make docs`) renders everything again; `--check` only lists what
is out of date, and a unit test holds the committed files equal to a fresh render.

Renderers (arguments after the name):
- `tags ROLE ANCHOR [benchmark=B] [profile=P] [under=N.N] [automated]`: the anchored tag list of the
  controls the role fixes (its `remediation.role`, or `remediation.also`), optionally only those of
  benchmark B, of profile P, numbered under N.N, or automated: for a step that must run whenever any
  of them is selected.
- `flag-names ROLE VAR`: VAR, mapping each daemon.json key a `daemon_json_key` check of the role's
  controls judges to the dockerd flags that set it.
- `role-controls ROLE`, `role-variables ROLE`: Markdown tables of what the role fixes, with the
  variables and their defaults, and of every variable it documents in `meta/argument_specs.yml`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from casemate.catalog.loader import Catalog, load_catalog
from casemate.catalog.model import Entry
from casemate.checks import builtin_kinds
from casemate.errors import CasemateError
from casemate.locations import content_root

MARKER = re.compile(
    r"^(?P<indent>[ \t]*)(?:# |<!-- )casemate-generated: (?P<args>.+?)(?: -->)?[ \t]*$"
)
PAGES = "docs/controls"
WIDTH = 110
_SCANNED = ("roles/**/*.yml", "docs/**/*.md")


class GeneratedPartError(CasemateError):
    """A generated part is malformed or names something the catalog and roles do not have."""


@dataclass(frozen=True, slots=True)
class Sources:
    """What the renderers read: the catalog and the roles of one checkout."""

    root: Path
    catalog: Catalog

    def role_entries(self, role: str) -> list[Entry]:
        """Controls the role takes part in fixing, in catalog order."""
        return [
            e
            for e in self.catalog.entries
            if e.control.remediation is not None
            and role in (e.control.remediation.role, *e.control.remediation.also)
        ]

    def role_yaml(self, role: str, *parts: str) -> Any:
        path = self.root.joinpath("roles", role, *parts)
        if not path.is_file():
            raise GeneratedPartError(f"{path.relative_to(self.root)}: no such file")
        return yaml.safe_load(path.read_text())

    def defaults(self, role: str) -> dict[str, Any]:
        return dict(self.role_yaml(role, "defaults", "main.yml") or {})

    def options(self, role: str) -> dict[str, Any]:
        spec = self.role_yaml(role, "meta", "argument_specs.yml")
        return dict(spec["argument_specs"]["main"].get("options") or {})


# --- renderers of parts ----------------------------------------------------------------------


def _selected(src: Sources, role: str, filters: list[str]) -> list[Entry]:
    entries = src.role_entries(role)
    if not entries:
        raise GeneratedPartError(f"no control of the catalog names the role {role!r}")
    for f in filters:
        name, _, value = f.partition("=")
        if name == "profile" and value:
            entries = [e for e in entries if value in e.control.profiles]
        elif name == "benchmark" and value:
            entries = [e for e in entries if e.benchmark == value]
        elif name == "under" and value:
            entries = [e for e in entries if e.ref.startswith(value + ".")]
        elif f == "automated":
            entries = [e for e in entries if e.control.automated]
        else:
            raise GeneratedPartError(
                f"unknown filter {f!r} (benchmark=B, profile=P, under=N.N, automated)"
            )
    if not entries:
        raise GeneratedPartError(f"the filters {' '.join(filters)} leave no control of {role}")
    return entries


def _flow(items: list[str], indent: str) -> list[str]:
    """A YAML flow sequence wrapped at WIDTH: `[a, b,` then ` c]` lines under the bracket."""
    lines: list[str] = []
    line = indent + "["
    for i, item in enumerate(items):
        word = item + ("]" if i == len(items) - 1 else ",")
        if len(line) + 1 + len(word) > WIDTH and line.strip() not in ("", "["):
            lines.append(line)
            line = indent + " " + word
        else:
            line += ("" if line.endswith("[") else " ") + word
    return [*lines, line]


def render_tags(src: Sources, args: list[str]) -> list[str]:
    if len(args) < 2:
        raise GeneratedPartError("tags needs ROLE ANCHOR [FILTER ...]")
    role, anchor, *filters = args
    ids = [e.id for e in _selected(src, role, filters)]
    return [f"tags: &{anchor}", *_flow(ids, "  ")]


def render_flag_names(src: Sources, args: list[str]) -> list[str]:
    if len(args) != 2:
        raise GeneratedPartError("flag-names needs ROLE VAR")
    role, var = args
    flags: dict[str, list[str]] = {}
    for e in src.role_entries(role):
        check = e.control.check
        if check is None or check.kind != "daemon_json_key" or not check.params.get("flags"):
            continue
        key, given = str(check.params["key"]), [str(f) for f in check.params["flags"]]
        if flags.setdefault(key, given) != given:
            raise GeneratedPartError(f"{e.id}: flags of {key} differ from another control's")
    if not flags:
        raise GeneratedPartError(f"no daemon_json_key check of {role} names dockerd flags")
    return [f"{var}:"] + [
        f"  {k}: [{', '.join(json.dumps(f) for f in v)}]" for k, v in flags.items()
    ]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _value(value: Any, *, in_table: bool = True) -> str:
    """A default as YAML would write it, in a code span (a `|` escaped inside a table)."""
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, str):
        shown = value if value else '""'
    else:
        shown = json.dumps(value)
    shown = " ".join(shown.split())
    return "`" + (shown.replace("|", "\\|") if in_table else shown) + "`"


def _number(e: Entry) -> str:
    return f"{e.benchmark_title.removesuffix(' Benchmark')} {e.ref}"


def _sets(src: Sources, role: str, e: Entry) -> str:
    rem = e.control.remediation
    assert rem is not None  # role_entries keeps remediated controls only
    if rem.role != role:
        return f"its part of the fix; `{rem.role}` sets the rest"
    defaults = src.defaults(role)
    shown = [f"`{v}` = {_value(defaults[v])}" if v in defaults else f"`{v}`" for v in rem.vars]
    return ", ".join(shown) or "—"


def render_role_controls(src: Sources, args: list[str]) -> list[str]:
    if len(args) != 1:
        raise GeneratedPartError("role-controls needs ROLE")
    role = args[0]
    rows = [
        "| control | number | level | mode | title | sets (default) |",
        "|---|---|---|---|---|---|",
    ]
    for e in _selected(src, role, []):
        rows.append(
            f"| {e.id} | {_number(e)} | {e.control.level} | {e.control.mode} | "
            f"{_cell(e.control.title)} | {_sets(src, role, e)} |"
        )
    return rows


def render_role_variables(src: Sources, args: list[str]) -> list[str]:
    if len(args) != 1:
        raise GeneratedPartError("role-variables needs ROLE")
    role = args[0]
    defaults = src.defaults(role)
    rows = ["| variable | type | default | what it is |", "|---|---|---|---|"]
    for name, option in src.options(role).items():
        kind = str(option.get("type", ""))
        if option.get("elements"):
            kind += f" of {option['elements']}"
        default = _value(defaults[name]) if name in defaults else "—"
        rows.append(f"| `{name}` | {kind} | {default} | {_cell(str(option.get('description')))} |")
    return rows


RENDERERS: dict[str, Callable[[Sources, list[str]], list[str]]] = {
    "tags": render_tags,
    "flag-names": render_flag_names,
    "role-controls": render_role_controls,
    "role-variables": render_role_variables,
}


@dataclass(frozen=True, slots=True)
class TagList:
    """A generated tag list: where it is, the role it names and the ids it renders."""

    path: Path
    role: str
    anchor: str
    ids: tuple[str, ...]


def tag_lists(root: Path, catalog: Catalog) -> list[TagList]:
    """Every `tags` part in the roles, with the ids a fresh render gives it."""
    src = Sources(root, catalog)
    found: list[TagList] = []
    for path in sorted((root / "roles").glob("*/**/*.yml")):
        for line in path.read_text().splitlines():
            m = MARKER.match(line)
            if m is None or m["args"].split()[0] != "tags":
                continue
            role, anchor, *filters = m["args"].split()[1:]
            ids = tuple(e.id for e in _selected(src, role, filters))
            found.append(TagList(path, role, anchor, ids))
    return found


# --- whole pages -------------------------------------------------------------------------------


def _ref_key(e: Entry) -> tuple[int, ...]:
    return tuple(int(p) for p in e.ref.split("."))


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _control_section(e: Entry, defaults: Callable[[str], dict[str, Any]]) -> list[str]:
    c = e.control
    facts = [f"level {c.level}", c.mode, "applies to " + ", ".join(c.applies_to)]
    if len(c.profiles) == 1:
        facts.append(f"profile {c.profiles[0]} only")
    lines = [
        f"### {e.id}: {e.ref} {c.title}",
        "",
        " · ".join(facts),
        "",
        " ".join(c.description.split()),
    ]
    items: list[str] = []
    if c.remediation is not None:
        role = c.remediation.role
        values = defaults(role)
        sets = [
            f"`{v}` (default {_value(values[v], in_table=False)})" if v in values else f"`{v}`"
            for v in c.remediation.vars
        ]
        text = f"role `{role}`" + (
            ", with " + ", ".join(f"`{r}`" for r in c.remediation.also)
            if c.remediation.also
            else ""
        )
        text += (": sets " + ", ".join(sets)) if sets else ""
        text += "; only when the site sets it (opt-in)" if c.remediation.opt_in else ""
        items.append(f"- Remediation: {text}")
    if c.check is not None:
        params = json.dumps(c.check.params, separators=(", ", ": "))
        items.append(f"- Check: `{c.check.kind}` {_code(params)}")
        if (cond := c.check.only_if) is not None:
            shown = json.dumps(cond.params, separators=(", ", ": "))
            items.append(f"- Only if: `{cond.kind}` {_code(shown)}")
    if c.report_only:
        items.append(
            "- Report only: judged per container or image; casemate never changes workloads"
        )
    if c.manual:
        items.append(f"- Guidance: {' '.join(c.manual.split())}")
    return [*lines, "", *items, ""]


def render_pages(src: Sources) -> dict[str, str]:
    """docs/controls/<benchmark>.md for each benchmark of the catalog."""
    cache: dict[str, dict[str, Any]] = {}

    def defaults(role: str) -> dict[str, Any]:
        if role not in cache:
            cache[role] = src.defaults(role)
        return cache[role]

    pages: dict[str, str] = {}
    for benchmark in src.catalog.benchmarks():
        entries = sorted((e for e in src.catalog.entries if e.benchmark == benchmark), key=_ref_key)
        first = entries[0]
        files = sorted({e.source for e in entries})
        lines = [
            f"# {first.benchmark_title} {first.benchmark_version}: every control",
            "",
            f"<!-- Rendered by `make docs` (python -m casemate.generated) from {', '.join(files)}. "
            "Do not edit: change the catalog or the role defaults, then run make docs. -->",
            "",
            f"{len(entries)} controls. The number is the benchmark's own, derived from the id; the "
            "default of each variable is the role's (`roles/<role>/defaults/main.yml`). "
            "Modes, statuses and check kinds: [catalog.md](../catalog.md).",
            "",
        ]
        for e in entries:
            lines += _control_section(e, defaults)
        pages[f"{PAGES}/{benchmark}.md"] = "\n".join(lines).rstrip("\n") + "\n"
    return pages


# --- files -------------------------------------------------------------------------------------


def render_file(src: Sources, path: Path, text: str) -> str:
    """The text with each generated part rendered again; the rest kept as it is."""
    out: list[str] = []
    lines = text.splitlines(keepends=True)
    i = 0
    where = path.relative_to(src.root) if path.is_relative_to(src.root) else path
    while i < len(lines):
        m = MARKER.match(lines[i].rstrip("\n"))
        out.append(lines[i])
        i += 1
        if m is None:
            continue
        args = m["args"].split()
        if args[0] == "end":
            raise GeneratedPartError(f"{where}:{i}: an end marker without a start")
        end = next(
            (
                j
                for j in range(i, len(lines))
                if (n := MARKER.match(lines[j].rstrip("\n"))) and n["args"] == "end"
            ),
            None,
        )
        if end is None:
            raise GeneratedPartError(f"{where}:{i}: generated part without an end marker")
        renderer = RENDERERS.get(args[0])
        if renderer is None:
            raise GeneratedPartError(f"{where}:{i}: unknown renderer {args[0]!r}")
        try:
            body = renderer(src, args[1:])
        except GeneratedPartError as err:
            raise GeneratedPartError(f"{where}:{i}: {err}") from None
        indent = m["indent"] if path.suffix != ".md" else ""
        out += [f"{indent}{line}\n" if line else "\n" for line in body]
        out.append(lines[end])
        i = end + 1
    return "".join(out)


def _files_with_parts(root: Path) -> Iterable[Path]:
    for pattern in _SCANNED:
        for path in sorted(root.glob(pattern)):
            if path.is_file() and "casemate-generated:" in path.read_text():
                yield path


def render_all(root: Path, catalog: Catalog) -> dict[Path, str]:
    """Every file that holds generated text, with that text as it should be."""
    src = Sources(root, catalog)
    rendered = {p: render_file(src, p, p.read_text()) for p in _files_with_parts(root)}
    rendered |= {root / rel: text for rel, text in render_pages(src).items()}
    return rendered


def _differing(root: Path, rendered: dict[Path, str]) -> list[Path]:
    out = [p for p, text in rendered.items() if not p.is_file() or p.read_text() != text]
    out += [p for p in sorted((root / PAGES).glob("*.md")) if p not in rendered]
    return sorted(out)


def stale(root: Path, catalog: Catalog) -> list[Path]:
    """Files whose committed text differs from a fresh render, and pages no benchmark has."""
    return _differing(root, render_all(root, catalog))


def write(root: Path, catalog: Catalog) -> list[Path]:
    """Render every file again; remove pages no benchmark has. Returns what changed."""
    rendered = render_all(root, catalog)
    changed = _differing(root, rendered)
    for path in changed:
        if path in rendered:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(rendered[path])
        else:
            path.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m casemate.generated",
        description="Render the role tag lists, role tables and control pages from the catalog.",
    )
    parser.add_argument("--check", action="store_true", help="only list what is out of date")
    parser.add_argument("--root", type=Path, default=None, help="checkout (default: this one)")
    opts = parser.parse_args(argv)
    root = (opts.root or content_root()).resolve()
    try:
        catalog = load_catalog(None, builtin_kinds())
        paths = stale(root, catalog) if opts.check else write(root, catalog)
    except CasemateError as err:
        print(f"casemate: error: {err}", file=sys.stderr)
        return err.exit_code
    for path in paths:
        print(f"{'out of date' if opts.check else 'rendered'}: {path.relative_to(root)}")
    return 1 if opts.check and paths else 0


if __name__ == "__main__":
    raise SystemExit(main())
