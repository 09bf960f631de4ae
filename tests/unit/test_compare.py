import pytest

from casemate.checks.compare import MISSING, Op, compare, describe, mode_within


@pytest.mark.parametrize(
    ("mode", "limit", "ok"),
    [
        ("0644", "0644", True),
        ("0600", "0644", True),
        ("0400", "0644", True),
        ("0664", "0644", False),
        ("0466", "0644", False),  # numerically smaller, yet group/other can write: a bitmask test
        ("4644", "0644", False),  # setuid is outside the limit
        ("0660", "0660", True),
        ("0666", "0660", False),
    ],
)
def test_mode_within_is_a_bitmask(mode: str, limit: str, ok: bool) -> None:
    assert mode_within(mode, limit) is ok


@pytest.mark.parametrize(
    ("op", "observed", "value", "ok"),
    [
        (Op.EQ, False, False, True),
        (Op.EQ, MISSING, False, False),
        (Op.NE, "json-file", "json-file", False),
        (Op.NE, MISSING, "aufs", True),
        (Op.IN, "info", ["info", "warn"], True),
        (Op.NOT_IN, "debug", ["info"], True),
        (Op.REGEX, "TLS_AES_128", "^TLS_", True),
        (Op.NOT_REGEX, MISSING, "x", True),
        (Op.MAX_MODE, "0640", "0600", False),
        (Op.MAX_MODE, "junk", "0600", False),
        (Op.GE, "5", 3, True),
        (Op.LE, True, 3, False),
        (Op.PRESENT, MISSING, None, False),
        (Op.ABSENT, MISSING, None, True),
        (Op.EMPTY, [], None, True),
        (Op.EMPTY, ["r:5000"], None, False),
        (Op.NONEMPTY, ["authz"], None, True),
        (Op.NONEMPTY, "", None, False),
        (Op.CONTAINS, ["Node", "RBAC"], "RBAC", True),
        (Op.NOT_CONTAINS, ["AlwaysAdmit"], "AlwaysAdmit", False),
        (Op.ANY_MATCH, ["name=seccomp,profile=default"], "^name=seccomp", True),
        (Op.NONE_MATCH, ["dm.basesize=20G"], r"^dm\.basesize=", False),
        (Op.NONE_MATCH, MISSING, r"^dm\.basesize=", True),
    ],
)
def test_compare(op: Op, observed: object, value: object, ok: bool) -> None:
    assert compare(op, observed, value) is ok


def test_every_op_reads_in_a_report() -> None:
    for op in Op:
        assert describe(op, "x")


@pytest.mark.parametrize(
    ("op", "value", "text"),
    [
        (Op.EQ, False, "= false"),
        (Op.IN, ["a", 1], 'one of ["a", 1]'),
        (Op.SUBSET, ["TLS_A"], 'set, and only items from ["TLS_A"]'),
        (Op.LE, 5, "<= 5"),
        (Op.EQ, "{x}", "= {x}"),
        (Op.REGEX, "^a{2}$", "matches /^a{2}$/"),
        (Op.MAX_MODE, "0644", "mode 0644 or stricter"),
        (Op.ABSENT, None, "not set"),
    ],
)
def test_an_expectation_reads_with_its_value_shown_as_reports_show_it(
    op: Op, value: object, text: str
) -> None:
    assert describe(op, value) == text
