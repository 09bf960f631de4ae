"""Every report format rendered from recorded verify reports: OSCAL read back through
compliance-trestle's models, SARIF validated against the SARIF 2.1.0 schema, CSV parsed back, HTML
parsed; and each carries a waived result (a status the model may add) without knowing it."""

from __future__ import annotations

import ast
import csv
import io
import json
import subprocess
import sys
import uuid
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic.v1 import ValidationError as TrestleValidationError
from trestle.oscal.assessment_results import AssessmentResults

from casemate.errors import BadInputError
from casemate.report import changes, csv_rows, document, formats, html_page, oscal, sarif

from .reports import WAIVED, WAIVER, recorded, with_waiver

SARIF_SCHEMA = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "sarif" / "sarif-2.1.0-rtm.5.json").read_text()
)
NAMES = ["fresh", "hardened"]


def docs() -> list[tuple[str, dict[str, Any]]]:
    return [(n, recorded(n)) for n in NAMES] + [("waived", with_waiver(recorded("hardened")))]


@pytest.mark.parametrize("name", NAMES)
def test_recorded_reports_follow_the_report_schema(name: str) -> None:
    document.validate(recorded(name))


def test_statuses_come_from_the_model_and_the_document() -> None:
    assert document.statuses(recorded("hardened")) == document.STATUSES
    # whether or not the model knows `waived` yet, it is shown once, after the model's own
    waived = document.statuses(with_waiver(recorded("hardened")))
    assert waived == list(dict.fromkeys([*document.STATUSES, "waived"]))


# --- OSCAL -----------------------------------------------------------------------------------


def oscal_back(doc: dict[str, Any]) -> Any:
    """The rendered OSCAL JSON read back through trestle's models (which validate it)."""
    raw = json.loads(oscal.render(doc))
    return AssessmentResults.parse_obj(raw["assessment-results"])


@pytest.mark.parametrize(("name", "doc"), docs())
def test_oscal_reads_back_as_valid_assessment_results(name: str, doc: dict[str, Any]) -> None:
    ar = oscal_back(doc)
    assert ar.metadata.oscal_version.__root__ == "1.1.3"
    (result,) = ar.results
    # the run times, the tool and the catalog digest
    assert result.start.isoformat() == doc["started"]
    assert result.end.isoformat() == doc["finished"]
    (tool,) = result.local_definitions.components
    assert tool.title == "casemate"
    props = {p.name: p.value for p in result.props}
    assert props["catalog-digest"] == doc["catalog"]["digest"]
    assert props["run-id"] == doc["run_id"]
    # each host x control is an observation, about its host, made by the tool
    assert len(result.observations) == len(doc["results"])
    hosts = {i.uuid: i for i in result.local_definitions.inventory_items}
    assert {next(p.value for p in i.props if p.name == "hostname") for i in hosts.values()} == {
        h["name"] for h in doc["hosts"]
    }
    for o in result.observations:
        assert o.subjects[0].subject_uuid in hosts
        assert o.origins[0].actors[0].actor_uuid == tool.uuid
    # a finding for each failure or error (or waived one), naming the control id
    failing = [r for r in doc["results"] if r["status"] in ("fail", "error", "waived")]
    assert len(result.findings or []) == len(failing)
    assert sorted(f.target.target_id for f in result.findings or []) == sorted(
        r["control_id"] for r in failing
    )
    by_uuid = {o.uuid: o for o in result.observations}
    for f in result.findings or []:
        (related,) = f.related_observations
        seen = {p.name: p.value for p in by_uuid[related.observation_uuid].props}
        assert seen["control-id"] == f.target.target_id
        assert f.target.status.state.value == "not-satisfied"


def test_oscal_carries_the_waiver() -> None:
    result = oscal_back(with_waiver(recorded("hardened"))).results[0]
    (finding,) = [f for f in result.findings if "waived" in (f.remarks or "")]
    assert finding.target.target_id == WAIVED[1]
    assert WAIVER["owner"] in finding.remarks and WAIVER["expires"] in finding.remarks
    (props,) = [
        p
        for p in ({p.name: p.value for p in o.props} for o in result.observations)
        if p["control-id"] == WAIVED[1] and p["status"] == "waived"
    ]
    assert props["waiver-owner"] == WAIVER["owner"]
    assert props["status"] == "waived"


def test_oscal_rendering_is_validated_by_trestle() -> None:
    bad = recorded("hardened")
    bad["results"][0]["control_id"] = "not a token"  # OSCAL control ids are tokens
    bad["results"][0]["status"] = "fail"
    with pytest.raises(TrestleValidationError):
        oscal.render(bad)


@pytest.mark.parametrize(("name", "doc"), [*docs(), ("many hosts", None)])
def test_oscal_is_written_byte_for_byte_as_trestle_writes_its_model(
    name: str, doc: dict[str, Any] | None
) -> None:
    """render validates and writes the plain document itself (a result shape validated once):
    what it writes is exactly what trestle's model of it serializes to."""
    doc = doc or many_hosts(recorded("hardened"), 5)
    text = oscal.render(doc)
    model = AssessmentResults.parse_obj(json.loads(text)["assessment-results"])
    assert text == model.oscal_serialize_json(pretty=True, wrapped=True) + "\n"


def many_hosts(doc: dict[str, Any], count: int) -> dict[str, Any]:
    """`doc` with its hosts repeated under other names: results of one shape on many hosts."""
    out = dict(doc)
    out["hosts"] = [{**h, "name": f"{h['name']}-{i}"} for i in range(count) for h in doc["hosts"]]
    out["results"] = [
        {**r, "host": f"{r['host']}-{i}"} for i in range(count) for r in doc["results"]
    ]
    return out


@pytest.mark.parametrize("at", [0, -1])
def test_a_bad_value_on_any_host_fails_validation_though_shapes_are_validated_once(
    at: int,
) -> None:
    doc = many_hosts(recorded("hardened"), 3)
    doc["results"][at] = {**doc["results"][at], "control_id": "not a token", "status": "fail"}
    with pytest.raises(TrestleValidationError):
        oscal.render(doc)


def test_oscal_is_the_same_for_the_same_run() -> None:
    doc = recorded("fresh")
    assert oscal.render(doc) == oscal.render(doc)


CASEMATE_OSCAL_NAMESPACE = uuid.UUID("b5449216-263a-57ad-bbd2-1d227c039e27")


def _times(node: Any) -> list[str]:
    """Every date-time value in an OSCAL document, by the keys OSCAL gives them."""
    keys = ("start", "end", "collected", "last-modified", "published", "date")
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in keys and isinstance(v, str)]
        return found + [t for v in node.values() for t in _times(v)]
    if isinstance(node, list):
        return [t for v in node for t in _times(v)]
    return []


def test_oscal_uuids_and_times_come_from_the_run_never_the_clock() -> None:
    """Each UUID is uuid5 under casemate's fixed namespace of RUN_ID/object path; each time is
    the run's own start or finish: a report rendered again (in a bundle, a year later) is the
    same document."""
    doc = recorded("hardened")
    raw = json.loads(oscal.render(doc))["assessment-results"]
    run_id = doc["run_id"]

    def ours(*path: str) -> str:
        return str(uuid.uuid5(CASEMATE_OSCAL_NAMESPACE, "/".join([run_id, *path])))

    assert oscal.NAMESPACE == CASEMATE_OSCAL_NAMESPACE
    assert raw["uuid"] == ours("assessment-results")
    (result,) = raw["results"]
    assert result["uuid"] == ours("result")
    assert result["local-definitions"]["components"][0]["uuid"] == ours("tool")
    r = doc["results"][0]
    assert result["observations"][0]["uuid"] == ours("observation", r["host"], r["control_id"])
    failing = next(x for x in doc["results"] if x["status"] == "fail")
    assert ours("finding", failing["host"], failing["control_id"]) in {
        f["uuid"] for f in result["findings"]
    }
    assert set(_times(raw)) == {doc["started"], doc["finished"]}
    # another run id, other UUIDs: two runs never share an object's UUID
    other = json.loads(oscal.render(doc | {"run_id": "20270101T000000Z-verify-ffffff"}))
    assert other["assessment-results"]["uuid"] != raw["uuid"]


# --- SARIF -----------------------------------------------------------------------------------


def sarif_valid(text: str) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(text)
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)
    return log


def test_the_vendored_sarif_schema_rejects_a_bad_log() -> None:
    log = json.loads(sarif.render(recorded("hardened")))
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(SARIF_SCHEMA).validate(log)


@pytest.mark.parametrize(("name", "doc"), docs())
def test_sarif_follows_the_sarif_2_1_0_schema(name: str, doc: dict[str, Any]) -> None:
    log = sarif_valid(sarif.render(doc))
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    # rules: every catalog control in the report, once
    assert sorted(r["id"] for r in rules) == sorted({r["control_id"] for r in doc["results"]})
    titles = {r["control_id"]: r for r in doc["results"]}
    for rule in rules:
        source = titles[rule["id"]]
        assert rule["shortDescription"]["text"] == source["title"]
        assert rule["properties"]["benchmark"] == source["benchmark"]
        assert rule["properties"]["level"] == source["level"]
        assert rule["help"]["text"]
    # results: fail and error (and waived ones, suppressed), each pointing at its rule
    expected = Counter(
        (r["host"], r["control_id"])
        for r in doc["results"]
        if r["status"] in ("fail", "error", "waived")
    )
    got = Counter((r["properties"]["host"], r["ruleId"]) for r in run["results"])
    assert got == expected
    for res in run["results"]:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
    assert run["invocations"][0]["startTimeUtc"].endswith("Z")


def test_sarif_waived_result_is_an_external_suppression_with_the_reason() -> None:
    log = sarif_valid(sarif.render(with_waiver(recorded("hardened"))))
    suppressed = [r for r in log["runs"][0]["results"] if r.get("suppressions")]
    assert [(r["properties"]["host"], r["ruleId"]) for r in suppressed] == [WAIVED]
    (suppression,) = suppressed[0]["suppressions"]
    assert suppression["kind"] == "external"
    assert suppression["justification"] == WAIVER["reason"]
    assert suppression["properties"]["owner"] == WAIVER["owner"]


def test_sarif_levels_and_unprobed_hosts() -> None:
    doc = recorded("hardened")
    doc["results"][0]["status"] = "error"
    doc["hosts"][1]["probed"] = False
    doc["hosts"][1]["error"] = "cannot reach casemate-formatsa-2"
    run = sarif_valid(sarif.render(doc))["runs"][0]
    levels = {(r["properties"]["host"], r["ruleId"]): r["level"] for r in run["results"]}
    first = doc["results"][0]
    assert levels[(first["host"], first["control_id"])] == "warning"
    assert set(levels.values()) == {"error", "warning"}
    assert run["invocations"][0]["executionSuccessful"] is False
    (note,) = run["invocations"][0]["toolExecutionNotifications"]
    assert "cannot reach casemate-formatsa-2" in note["message"]["text"]


# --- CSV -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "doc"), docs())
def test_csv_parses_back_to_one_row_per_host_and_control(name: str, doc: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(csv_rows.render(doc), newline="")))
    assert len(rows) == len(doc["results"])
    assert tuple(rows[0]) == csv_rows.COLUMNS
    assert len({(r["host"], r["control_id"]) for r in rows}) == len(rows)
    for row, r in zip(rows, doc["results"], strict=True):
        assert (row["host"], row["control_id"], row["status"]) == (
            r["host"],
            r["control_id"],
            r["status"],
        )
        assert (row["evidence"].split("\n") if row["evidence"] else []) == r["evidence"]
        assert row["section"] == r["ref"].split(".")[0]
    if name == "waived":
        (waived,) = [r for r in rows if r["status"] == "waived"]
        assert (waived["host"], waived["control_id"]) == WAIVED
        assert waived["waiver_owner"] == WAIVER["owner"]
        assert waived["waiver_expires"] == WAIVER["expires"]
        assert waived["waiver_reason"] == WAIVER["reason"]


def test_csv_cell_from_a_host_cannot_be_a_spreadsheet_formula() -> None:
    doc = recorded("hardened")
    doc["results"][0]["observed"] = '=HYPERLINK("x","y")'
    (row, *_) = csv.DictReader(io.StringIO(csv_rows.render(doc), newline=""))
    assert row["observed"] == '\'=HYPERLINK("x","y")'


# --- HTML ------------------------------------------------------------------------------------


class Page(HTMLParser):
    """What the tests read from the page: result rows, summary totals, links and sources."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[dict[str, str | None]] = []
        self.totals: dict[str, str] = {}
        self.urls: list[str] = []
        self.tags: Counter[str] = Counter()
        self._total: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags[tag] += 1
        if tag == "tr" and a.get("class") == "result":
            self.rows.append(a)
        if tag == "div" and (a.get("class") or "").startswith("total "):
            self._total = a["data-status"]
        if tag == "b" and self._total and a.get("class") == "count":
            self.totals[self._total] = ""
        for name in ("href", "src", "action", "srcset"):
            if a.get(name):
                self.urls.append(str(a[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "div":
            self._total = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._total and self.totals.get(self._total) == "":
            self.totals[self._total] = data.strip()


def page(doc: dict[str, Any], diff: changes.Changes | None = None) -> tuple[str, Page]:
    text = html_page.render(doc, diff)
    parsed = Page()
    parsed.feed(text)
    return text, parsed


@pytest.mark.parametrize(("name", "doc"), docs())
def test_html_shows_every_result_and_the_counts_per_status(name: str, doc: dict[str, Any]) -> None:
    _, p = page(doc)
    assert len(p.rows) == len(doc["results"])
    assert Counter(r["data-status"] for r in p.rows) == Counter(r["status"] for r in doc["results"])
    assert p.totals == {s: str(doc["summary"].get(s, 0)) for s in document.statuses(doc)}
    for row in p.rows:
        assert row["data-section"] and row["data-level"] in ("1", "2")


def test_html_is_self_contained() -> None:
    text, p = page(recorded("hardened"), changes.compare(recorded("fresh"), recorded("hardened")))
    assert p.tags["link"] == 0 and p.tags["img"] == 0 and p.tags["iframe"] == 0
    assert p.tags["script"] == 1 and p.tags["style"] == 1
    # every link stays in the page: a fragment (evidence) or a query (a filtered view)
    assert p.urls and all(u.startswith(("#", "?")) for u in p.urls)
    assert "default-src 'none'" in text  # and the page may fetch nothing, whatever it holds


def test_html_escapes_what_a_host_said() -> None:
    doc = recorded("hardened")
    doc["results"][0]["observed"] = "<script>alert(1)</script>"
    text, p = page(doc)
    assert "<script>alert(1)" not in text
    assert p.tags["script"] == 1


def test_html_links_each_result_to_its_raw_evidence() -> None:
    doc = recorded("hardened")
    text, _ = page(doc)
    r = next(r for r in doc["results"] if r["evidence"])
    host = next(h for h in doc["hosts"] if h["name"] == r["host"])
    assert r["evidence"][0] in host["observations"]
    anchor = text.split(f"<code>{r['evidence'][0]}</code></summary>", 1)[0].rsplit('id="', 1)[1]
    assert f'href="#{anchor.split(chr(34))[0]}"' in text


def test_html_shows_waivers_with_owner_and_expiry() -> None:
    text, p = page(with_waiver(recorded("hardened")))
    (row,) = [r for r in p.rows if r["data-status"] == "waived"]
    assert row["data-host"] == WAIVED[0]
    assert 'id="waivers"' in text
    assert f"waived by {WAIVER['owner']} until {WAIVER['expires']}" in text
    assert p.totals["waived"] == "1"


def test_html_shows_what_changed_since_the_previous_run() -> None:
    fresh, hardened = recorded("fresh"), recorded("hardened")
    text, _ = page(hardened, changes.compare(fresh, hardened))
    assert f'<code id="previous-run">{fresh["run_id"]}</code>' in text
    new = text.split('id="new-failures"', 1)[1].split("</details>", 1)[0]
    assert 'data-host="casemate-formatsa-2" data-control="cis_docker_3_1"' in new
    assert "pass → fail" in new
    _, no_previous = page(hardened, None)
    assert any("No earlier finished verify run" in t for t in no_previous.text)


# --- the registry ----------------------------------------------------------------------------


def test_format_names_parse_and_unknown_ones_are_bad_input() -> None:
    assert [f.name for f in formats.parse("all")] == list(formats.NAMES)
    assert [f.name for f in formats.parse("sarif, html")] == ["html", "sarif"]
    with pytest.raises(BadInputError, match="unknown report format 'pdf'"):
        formats.parse("html,pdf")
    with pytest.raises(BadInputError):
        formats.parse(" , ")


def test_every_format_is_written_0600(tmp_path: Path) -> None:
    doc = recorded("hardened")
    asked: list[bool] = []

    def since() -> changes.Changes | None:
        asked.append(True)
        return changes.compare(recorded("fresh"), doc)

    written = formats.write(tmp_path / "out", doc, formats.FORMATS, since)
    assert [p.name for p in written] == [f.filename for f in formats.FORMATS]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in written)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o700
    assert asked == [True]  # the earlier run is looked for once, and only for the HTML
    formats.write(tmp_path / "csv", doc, formats.parse("csv"), since)
    assert asked == [True]
    assert json.loads((tmp_path / "out" / "report.json").read_text()) == doc


def test_the_oscal_renderers_own_imports_are_the_ones_preloaded() -> None:
    """verify imports the renderers' slow modules in a thread while it probes (formats.preload):
    what oscal.build imports when it runs is what its format declares, so none is left for after
    the probe (a second import of a loaded module costs nothing)."""
    source = ast.parse(Path(oscal.__file__).read_text())
    lazy = {
        node.module
        for fn in ast.walk(source)
        if isinstance(fn, ast.FunctionDef)
        for node in ast.walk(fn)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert lazy and lazy <= set(formats.get("oscal").loads), lazy
    script = (
        "import sys; from casemate.report import formats; "
        "formats.preload(formats.parse('oscal')); "
        "print(all(m in sys.modules for m in formats.get('oscal').loads))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "True"
