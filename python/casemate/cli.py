"""The `casemate` command line. Thin: it validates input, calls the library, and renders."""

from __future__ import annotations

import copy
import importlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

# Only what every command needs, and what the options' help names, is imported here: each command
# imports the rest when it runs (main() builds only the command named), so `catalog list` or
# `--help` never loads Ansible's runner, the reports' renderers, rich or the harden flow.
from casemate import __version__, interrupts
from casemate.errors import BadInputError, CasemateError, EnvironmentProblemError
from casemate.locations import content_root, state_dir
from casemate.report import formats
from casemate.runner import STRATEGIES
from casemate.waivers import DEFAULT_FILE as WAIVERS_FILE

if TYPE_CHECKING:
    from rich.console import Console
    from typer.models import CommandInfo

    from casemate import hostlock, runlock, waivers, waves
    from casemate.catalog.loader import Catalog
    from casemate.catalog.model import Entry
    from casemate.catalog.select import Selection
    from casemate.gate import Gate
    from casemate.harden import HardenPlan
    from casemate.history.local import Recorder
    from casemate.history.store import Store
    from casemate.inventory import Inventory
    from casemate.rundir import RunDir
    from casemate.runner import StrategyChoice
    from casemate.verify import HostVerification

try:  # typer >= 0.24 vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer uses click itself
    from click.exceptions import ClickException  # type: ignore[assignment]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Harden container hosts and Kubernetes nodes to the CIS benchmarks, then prove it.",
)
catalog_app = typer.Typer(no_args_is_help=True, help="Browse the control catalog.")
lab_app = typer.Typer(no_args_is_help=True, help="The built-in lab: Debian node containers.")
evidence_app = typer.Typer(
    no_args_is_help=True, help="Signed evidence bundles of stored runs (docs/evidence.md)."
)
history_app = typer.Typer(
    help="Every recorded verify, drift and harden run: control timelines and regressions."
)
app.add_typer(catalog_app, name="catalog")
app.add_typer(lab_app, name="lab")
app.add_typer(evidence_app, name="evidence")
schedule_app = typer.Typer(
    no_args_is_help=True,
    help="Run casemate from a systemd timer on this controller (docs/schedule.md).",
)
app.add_typer(history_app, name="history")
app.add_typer(schedule_app, name="schedule")
collection_app = typer.Typer(
    no_args_is_help=True,
    help="The Ansible collection casemate.hardening: casemate's roles and playbooks "
    "(docs/fleet.md).",
)
app.add_typer(collection_app, name="collection")


class Ctx:
    """What every command is given: the catalog and state directories, the history store's URL
    (None: SQLite in the state directory) and its two consoles, made when first written to (rich
    costs a start-up that `catalog list` or `version` has no use for)."""

    def __init__(
        self,
        catalog_dir: Path | None,
        state: Path,
        out: Console | None = None,
        err: Console | None = None,
        db: str | None = None,
    ) -> None:
        self.catalog_dir = catalog_dir
        self.state = state
        self.db = db
        if out is not None:  # taken before the cached_property below
            self.__dict__["out"] = out
        if err is not None:
            self.__dict__["err"] = err

    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        return Console(highlight=False, width=_width(sys.stdout))

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, highlight=False, soft_wrap=True, width=_width(sys.stderr))

    def with_db(self, db: str | None) -> Ctx:
        return Ctx(self.catalog_dir, self.state, self.out, self.err, db)

    def catalog(self) -> Catalog:
        """The catalog, loaded and validated: a command calls this once and passes it down. The
        loaded form is kept in the state directory (catalog/cache.py) for the next command."""
        from casemate.catalog.cache import cached_catalog
        from casemate.checks import builtin_kinds

        return cached_catalog(self.catalog_dir, builtin_kinds(), self.state / "cache")


def _width(stream: Any) -> int | None:
    """Terminals report their width; logs and pipes get room for the report's columns."""
    return None if stream.isatty() else shutil.get_terminal_size((160, 40)).columns


def _ctx(ctx: typer.Context) -> Ctx:
    obj = ctx.find_root().obj
    assert isinstance(obj, Ctx)
    return obj


@app.callback()
def _root(
    ctx: typer.Context,
    catalog_dir: Annotated[
        Path | None, typer.Option("--catalog", help="Catalog directory (default: the shipped one).")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Runs and lab state (default: $CASEMATE_STATE_DIR or ./.casemate)."
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="CASEMATE_DB",
            show_envvar=False,
            help="History store URL: sqlite:///PATH or postgresql://USER@HOST/DB "
            "(default: $CASEMATE_DB, else history.sqlite3 in the state directory).",
        ),
    ] = None,
) -> None:
    ctx.obj = Ctx(
        catalog_dir=catalog_dir,
        state=(state or state_dir()).resolve(),
        db=db or None,
    )


@app.command("version")
def version_cmd() -> None:
    """Print casemate's version."""
    typer.echo(__version__)


# --- catalog ------------------------------------------------------------------------------------

FormatOpt = Annotated[str, typer.Option("--format", help="table or json")]
ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile",
        help="standard (SSH stays, hardened) or immutable (SSH off; needs a break-glass path).",
    ),
]


def _writable_dir(directory: Path, option: str) -> None:
    """Bad input before any host is touched: where `option` writes is a directory casemate can
    write in, made now (0700, parents too) when missing, so a run never ends in a write error."""
    from casemate import private

    try:
        private.make_dir(directory, own=False)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise BadInputError(f"{option} {directory}: cannot make the directory ({why})") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise BadInputError(f"{option} {directory}: cannot write in it")


def _check_format(fmt: str, allowed: tuple[str, ...]) -> None:
    if fmt not in allowed:
        raise BadInputError(f"--format must be one of {', '.join(allowed)}, not '{fmt}'")


@catalog_app.command("list")
def catalog_list(
    ctx: typer.Context,
    benchmark: Annotated[str | None, typer.Option(help="cis-docker or cis-kubernetes")] = None,
    level: Annotated[
        int | None, typer.Option(help="Only controls of this level and below.")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="Only controls of this profile (default: every profile).")
    ] = None,
    fmt: FormatOpt = "table",
) -> None:
    """List controls: id, benchmark number, level, mode, remediation and check kind."""
    from casemate.catalog.select import Selection, select
    from casemate.report import catalog as catalog_report

    c = _ctx(ctx)
    _check_format(fmt, ("table", "json"))
    entries = select(c.catalog(), Selection(level=level or 2, benchmark=benchmark, profile=profile))
    if fmt == "json":
        typer.echo(catalog_report.entries_json(entries))
    else:
        typer.echo(catalog_report.entries_text(entries))


@catalog_app.command("show")
def catalog_show(
    ctx: typer.Context,
    control_id: Annotated[str, typer.Argument(metavar="ID")],
    fmt: FormatOpt = "table",
) -> None:
    """Everything about one control, including the values its role sets by default."""
    from casemate.report import catalog as catalog_report

    c = _ctx(ctx)
    _check_format(fmt, ("table", "json"))
    entry = c.catalog().get(control_id)
    if entry is None:
        raise BadInputError(f"unknown control '{control_id}'")
    rem = entry.control.remediation
    defaults = catalog_report.role_defaults(content_root(), rem.role) if rem else {}
    doc = catalog_report.show_doc(entry, defaults)
    if fmt == "json":
        typer.echo(json.dumps(doc, indent=2))
        return
    for line in catalog_report.show_lines(entry, doc):
        c.out.print(line)


@catalog_app.command("tags")
def catalog_tags(
    ctx: typer.Context,
    level: Annotated[int, typer.Option(help="Profile level 1 or 2.")] = 1,
    controls: Annotated[str | None, typer.Option(help="Comma-separated control ids.")] = None,
    profile: ProfileOpt = "standard",
) -> None:
    """The --tags list for running playbooks/harden.yml with ansible-playbook directly (pass
    -e casemate_profile=PROFILE too)."""
    from casemate.catalog.select import Selection, parse_controls, select

    c = _ctx(ctx)
    selection = Selection(level=level, controls=parse_controls(controls), profile=profile)
    entries = select(c.catalog(), selection)
    typer.echo(",".join(e.id for e in entries if e.control.remediation is not None))


# --- lab ----------------------------------------------------------------------------------------


LabName = Annotated[str, typer.Option("--name", help="Lab name (several labs can coexist).")]


def _progress(c: Ctx) -> Any:
    began = time.monotonic()

    def say(message: str) -> None:
        c.err.print(f"[dim]{time.monotonic() - began:6.1f}s[/] {message}")

    return say


@lab_app.command("up")
def lab_up_cmd(
    ctx: typer.Context,
    nodes: Annotated[int, typer.Option(help="Number of nodes.")] = 2,
    name: LabName = "lab",
    release: Annotated[str, typer.Option(help="Debian release of the nodes.")] = "bookworm",
    rebuild: Annotated[bool, typer.Option(help="Rebuild the node image even if cached.")] = False,
    profile: Annotated[
        str, typer.Option(help="docker (container hosts) or k8s (kubeadm v1.32 nodes).")
    ] = "docker",
) -> None:
    """Build (or reuse) the node image and start the lab's node containers."""
    from casemate.lab import lab_up
    from casemate.report.lab import status as shown

    c = _ctx(ctx)
    status = lab_up(
        name, nodes, c.state, _progress(c), release=release, rebuild=rebuild, profile=profile
    )
    c.out.print(shown(status))


@lab_app.command("build")
def lab_build_cmd(
    ctx: typer.Context,
    release: Annotated[str, typer.Option(help="Debian release of the nodes.")] = "bookworm",
    rebuild: Annotated[bool, typer.Option(help="Rebuild the node image even if cached.")] = False,
) -> None:
    """Build (or reuse) the node image without starting any node."""
    from casemate.lab import lab_build

    c = _ctx(ctx)
    c.out.print(lab_build(c.state, _progress(c), release=release, rebuild=rebuild))


@lab_app.command("status")
def lab_status_cmd(ctx: typer.Context, name: LabName = "lab") -> None:
    """Show the lab's nodes and their health."""
    from casemate.lab import lab_status
    from casemate.report.lab import status as shown

    c = _ctx(ctx)
    c.out.print(shown(lab_status(name, c.state)))


@lab_app.command("down")
def lab_down_cmd(ctx: typer.Context, name: LabName = "lab") -> None:
    """Remove the lab's node containers, their volumes and network (the image stays cached)."""
    from casemate.lab import lab_down

    c = _ctx(ctx)
    lab_down(name, c.state, _progress(c))


# --- harden -------------------------------------------------------------------------------------

InventoryOpt = Annotated[Path, typer.Option("--inventory", "-i", help="Ansible inventory.")]
LimitOpt = Annotated[
    str | None, typer.Option("--limit", "-l", help="Hosts or groups (comma-separated).")
]
ControlsOpt = Annotated[str | None, typer.Option("--controls", help="Comma-separated control ids.")]
LevelOpt = Annotated[int, typer.Option("--level", help="CIS profile level: 1 or 2.")]
ForksOpt = Annotated[int, typer.Option("--forks", help="Hosts worked on in parallel.")]
WaiversOpt = Annotated[
    Path | None,
    typer.Option(
        "--waivers",
        help=f"Waiver file (default: ./{WAIVERS_FILE} when present; docs/waivers.md).",
    ),
]
NoWaiversOpt = Annotated[
    bool, typer.Option("--no-waivers", help=f"Apply no waiver, not even ./{WAIVERS_FILE}.")
]
FailOnOpt = Annotated[
    str,
    typer.Option(
        "--fail-on",
        help="Findings that make the exit status 1: any (default), level1, benchmark:NAME; "
        "comma-separated terms must all hold.",
    ),
]
WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        help="When another run of this inventory holds the controller lock: wait up to SECONDS "
        "for it (default 0: exit 4 at once, naming it).",
    ),
]
MetricsOpt = Annotated[
    Path | None,
    typer.Option(
        "--metrics-file",
        help="Also write the run's metrics here (Prometheus text format, for node_exporter's "
        "textfile collector).",
    ),
]


def _waivers(c: Ctx, catalog: Catalog, given: Path | None, off: bool) -> waivers.WaiverSet | None:
    """The waiver file the command applies (validated against the catalog), said on stderr."""
    from casemate import waivers
    from casemate.rundir import now_utc

    if off and given is not None:
        raise BadInputError("--waivers and --no-waivers contradict each other")
    path = None if off else waivers.waiver_file(given, Path.cwd())
    if path is None:
        return None
    found = waivers.load_waivers(path, set(catalog.ids()))
    today = now_utc().date()
    expired = sum(w.expired(today) for w in found.waivers)
    c.err.print(
        f"waivers: {path} ({len(found.waivers)} entries, {expired} expired)",
        markup=False,
        highlight=False,
    )
    return found


def _open_history(c: Ctx, metrics_file: Path | None) -> Store:
    """The history store, opened (created or migrated) before any host is touched; with the
    metrics file's directory checked too."""
    from casemate.history.store import open_store

    if metrics_file is not None:
        from casemate.metrics import check_target

        check_target(metrics_file)
    return open_store(c.db, c.state)


def _open_recorder(c: Ctx, metrics_file: Path | None) -> Recorder:
    """The history store of a run that only records in it, opened before any host is touched as
    `_open_history` opens it, but a SQLite store without loading SQLAlchemy (history/local.py)."""
    from casemate.history.local import open_recorder

    if metrics_file is not None:
        from casemate.metrics import check_target

        check_target(metrics_file)
    return open_recorder(c.db, c.state)


@contextmanager
def _recorded_if_interrupted(c: Ctx, store: Recorder, run: RunDir) -> Iterator[None]:
    """A run interrupted (Ctrl-C) is sealed and its run.json says `canceled`: it is recorded in
    the history store (opened before the run) like any other. Interrupted again while that
    is written, it is left for `casemate history import`, and one line says so."""
    try:
        yield
    except KeyboardInterrupt:
        try:
            _record(c, store, run)
        except KeyboardInterrupt:
            c.err.print(
                f"history: run {run.id} not recorded; import it later with "
                f"casemate history import {run.path}",
                markup=False,
            )
        raise


def _record(c: Ctx, store: Recorder, run: RunDir, *, close: bool = True) -> bool:
    """Record a finished run in the history store (closed afterwards unless `close` is False:
    more runs to record). A failure never fails the run: its record on disk is complete, and one
    line says how to import it later."""
    from casemate.history.record import read_run

    try:
        store.record(read_run(run.path))
    except CasemateError as exc:
        why = " ".join(str(exc).split())
        c.err.print(
            f"history: could not record run {run.id}: {why}; import it later with "
            f"casemate history import {run.path}",
            markup=False,
        )
        return False
    finally:
        if close:
            store.close()
    return True


@app.command("harden")
def harden_cmd(
    ctx: typer.Context,
    inventory: InventoryOpt,
    limit: LimitOpt = None,
    controls: ControlsOpt = None,
    level: LevelOpt = 1,
    check: Annotated[
        bool, typer.Option("--check", help="Report what would change; change nothing.")
    ] = False,
    diff: Annotated[bool, typer.Option("--diff", help="Show file changes.")] = False,
    strategy: Annotated[
        str, typer.Option(help="Ansible strategy: " + ", ".join(STRATEGIES))
    ] = "auto",
    forks: ForksOpt = 10,
    profile: ProfileOpt = "standard",
    break_glass: Annotated[
        str | None,
        typer.Option(
            "--break-glass",
            help="Profile immutable over SSH: the way in once SSH is off "
            "(console, serial, docker, ssm); docker is proven with a command first.",
        ),
    ] = None,
    waiver_file: WaiversOpt = None,
    no_waivers: NoWaiversOpt = False,
    metrics_file: MetricsOpt = None,
    only_drifted: Annotated[
        bool,
        typer.Option(
            "--only-drifted",
            help="Probe first; run only the drifted controls' tags on each host (and what the "
            "probe cannot judge there), none on a host where nothing drifted; verify again.",
        ),
    ] = False,
    wait: WaitOpt = 0.0,
    waves_spec: Annotated[
        str | None,
        typer.Option(
            "--waves",
            help="Staged rollout: cumulative targets, host counts or P% of the selected hosts, "
            "e.g. 1,10%,50%,100%. Each wave is hardened, then verified; the next starts only if "
            "at most --max-fail of its hosts failed, else exit 3 and later waves are untouched.",
        ),
    ] = None,
    canary: Annotated[
        int | None, typer.Option("--canary", help="Staged rollout: --waves N,100%.")
    ] = None,
    max_fail: Annotated[
        str | None,
        typer.Option(
            "--max-fail",
            help="With --waves/--canary: hosts of a wave that may fail (harden or verify) and "
            "the rollout still go on: N hosts or P% of the wave, rounded down (default 0).",
        ),
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help="With --waves/--canary: the verify findings that fail a host of a wave "
            "(any (default), level1, benchmark:NAME; as verify --fail-on).",
        ),
    ] = None,
) -> int:
    """Apply the selected controls with Ansible; exit 3 if any host failed or was unreachable.
    A control a waiver covers on a host is not remediated there. With --only-drifted, each host
    gets only the tags of what drifted on it (docs/drift.md). With --waves or --canary, the hosts
    are hardened and verified wave by wave (docs/fleet.md)."""
    from casemate import breakglass, waves
    from casemate.catalog.select import Selection, parse_controls, select
    from casemate.gate import parse_fail_on
    from casemate.harden import plan, shared_fixes, waive
    from casemate.rundir import now_utc
    from casemate.runner import choose_strategy, resolve_inventory

    c = _ctx(ctx)
    _check_run_options(strategy, forks, wait)
    rollout = waves.rollout_options(waves_spec, canary, max_fail)
    if rollout is None and fail_on is not None:
        raise BadInputError("--fail-on on harden gates a staged rollout: give --waves or --canary")
    if rollout is not None and metrics_file is not None:
        raise BadInputError("--metrics-file is not supported with --waves or --canary")
    catalog = c.catalog()
    gate = parse_fail_on(fail_on or "any", catalog.benchmarks())
    selection = Selection(level=level, controls=parse_controls(controls), profile=profile)
    entries = select(catalog, selection)
    found = _waivers(c, catalog, waiver_file, no_waivers)
    inv = resolve_inventory(inventory, c.state)
    harden_plan = plan(entries, inv, limit, narrow=bool(selection.controls))
    staged = rollout.split(harden_plan.hosts) if rollout is not None else None
    if found is not None:
        shared = shared_fixes(content_root(), catalog)
        harden_plan = waive(harden_plan, inv, found, now_utc().date(), shared)
        _print_waived(c, harden_plan.waiver_record or {})
    held_inventory = _controller_lock(ctx, c, inv, "harden", wait)
    store = _open_recorder(c, metrics_file)  # harden only records: no SQLAlchemy to load
    # before any host is touched: SSH goes off only where a break-glass path is named (and proven)
    paths = breakglass.assess(
        inv, harden_plan.hosts, profile, break_glass, breakglass.turns_ssh_off(harden_plan.entries)
    )
    glass = breakglass.prove(inv, paths) if paths else None
    chosen = choose_strategy(strategy, _connections(inv, harden_plan.hosts))
    job = _HardenJob(
        again=_Again(catalog, inv, entries, selection, forks, found),
        held_inventory=held_inventory,
        level=level,
        profile=profile,
        check=check,
        diff=diff,
        chosen=chosen,
        break_glass=break_glass,
        glass=glass,
        only_drifted=only_drifted,
        metrics_file=metrics_file,
    )
    if rollout is None or staged is None:
        return _harden_hosts(c, store, job, harden_plan).code
    return _rollout(c, store, job, harden_plan, rollout, staged, gate)


@dataclass(frozen=True, slots=True)
class _HardenJob:
    """What every harden of one command shares (each wave of a staged rollout is one harden)."""

    again: _Again
    held_inventory: runlock.ControllerLock
    level: int
    profile: str
    check: bool
    diff: bool
    chosen: StrategyChoice
    break_glass: str | None
    glass: dict[str, Any] | None
    only_drifted: bool
    metrics_file: Path | None


@dataclass(frozen=True, slots=True)
class _Hardened:
    """One harden run as it came out: its exit status, directory and record, and with
    --only-drifted the verify documents before and after the play."""

    code: int
    run: RunDir
    meta: dict[str, Any]
    outcome: str
    gone: dict[str, str]
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def _harden_hosts(
    c: Ctx,
    store: Recorder,
    job: _HardenJob,
    harden_plan: HardenPlan,
    *,
    rollout: Mapping[str, Any] | None = None,
    started: Callable[[RunDir], None] | None = None,
) -> _Hardened:
    """One harden run of `harden_plan`'s hosts: drift first (--only-drifted), host locks, the
    play, the record (with `rollout`, this wave's part of a staged rollout, in run.json) and its
    summary. The store is closed afterwards unless this is a wave of a rollout. `started` is told
    the run as soon as it exists."""
    from casemate import hostlock
    from casemate.harden import exit_code, run_harden, stored_stats
    from casemate.report import progress
    from casemate.rundir import new_run

    again, check, inv = job.again, job.check, job.again.inventory
    # --only-drifted: the probe tells which hosts answer (no reachability check of its own)
    before, harden_plan = (
        _drift_first(c, store, harden_plan, again) if job.only_drifted else (None, harden_plan)
    )
    run = new_run(c.state, "harden", inv.redactor(os.environ))
    if started is not None:
        started(run)
    job.held_inventory.name_run(run.id)
    c.err.print(
        f"hardening {len(harden_plan.hosts)} host(s), {len(harden_plan.applied())} controls, "
        f"level {job.level}, profile {job.profile}{' (check mode)' if check else ''}"
    )
    locks, gone = _locked_before_play(c, inv, harden_plan, before, run, check=check)
    _say_before_play(c, gone, locks, job.glass, job.chosen.why)
    held = locks.taken()
    try:
        began = time.monotonic()
        with (
            _recorded_if_interrupted(c, store, run),
            hostlock.Renewal(inv, held, run.id),
            progress.HardenProgress(c.err, harden_plan.hosts) as shown,
        ):
            outcome = run_harden(
                run=run,
                content=content_root(),
                catalog=again.catalog,
                inventory=inv,
                harden_plan=harden_plan,
                level=job.level,
                profile=job.profile,
                check=check,
                diff=job.diff,
                strategy=job.chosen.name,
                strategy_note=job.chosen.why,
                forks=again.forks,
                command=sys.argv,
                on_event=shown,
                break_glass=job.break_glass,
                break_glass_record=job.glass,
                unreachable=gone,
                busy=locks.busy,
                lock_failed=locks.failed,
                host_lock=locks.record,
                extra={"rollout": dict(rollout)} if rollout is not None else None,
            )
    finally:  # failed or interrupted too: this run's locks go (a lock it cannot remove expires)
        _release(c, inv, held, run)
    if job.diff:
        _print_diffs(c, run)
    meta = run.read_json("run.json")
    came_to = _print_harden(c, run, meta)
    close = rollout is None
    after = None
    if before is not None:
        recorded = _record(c, store, run, close=False)
        after = _after_drifted(
            c, store, run.id, harden_plan, before, again, check=check, gone=gone, close=close
        )
    else:
        recorded = _record(c, store, run, close=close)
    if job.metrics_file is not None:
        from casemate import metrics

        registry = metrics.harden_registry(meta, stored_stats(run, meta), recorded=recorded)
        metrics.write(job.metrics_file, registry)
    c.err.print(f"harden took {time.monotonic() - began:.1f}s; run stored in {run.path}")
    if came_to == "failed" and not any(s.failed or s.unreachable for s in outcome.hosts.values()):
        # the playbook itself failed (syntax, missing role, interrupted): no host is to blame
        stdout = next(iter(sorted(run.path.glob("ansible/artifacts/*/stdout"))), run.path)
        c.err.print(
            f"[red]ansible-playbook failed ({outcome.status}, rc={outcome.rc})[/]; see {stdout}"
        )
    return _Hardened(exit_code(came_to), run, meta, came_to, gone, before, after)


def _rollout(
    c: Ctx,
    store: Recorder,
    job: _HardenJob,
    harden_plan: HardenPlan,
    rollout: waves.Rollout,
    staged: list[list[str]],
    gate: Gate,
) -> int:
    """`harden --waves` / `--canary` (docs/fleet.md): each wave one harden run of its hosts, then
    verified; the loop and the decisions are waves.run_rollout's. Every wave's run.json ends with
    the whole rollout (`rollout`: each wave's hosts, runs and verdict, where it stopped and why).
    Closes the store."""
    from casemate import waves

    sizes = ", ".join(str(len(w)) for w in staged)
    c.err.print(
        f"staged rollout ({rollout.spec}, --max-fail {rollout.max_fail}, --fail-on {gate.spec}): "
        f"{len(staged)} wave(s) of {sizes} host(s)",
        markup=False,
    )
    runs: list[RunDir] = []

    def play(index: int, hosts: list[str], so_far: Mapping[str, Any]) -> waves.WavePlayed:
        c.err.print(f"wave {index} of {len(staged)}: {', '.join(hosts)}", markup=False)
        wave_plan = replace(harden_plan, hosts=hosts)
        so_far = dict(so_far) | {"wave": index}
        done = _harden_hosts(c, store, job, wave_plan, rollout=so_far, started=runs.append)
        if done.outcome == "canceled":  # Ctrl-C or SIGTERM stopped its play: the rollout ends here
            raise KeyboardInterrupt
        played = _verify_wave(c, store, job, done, hosts, gate, index)
        for host, why in played.failed.items():
            c.err.print(f"  wave {index}: {host} failed: {why}", markup=False, highlight=False)
        return played

    try:
        code, record = waves.run_rollout(rollout, staged, play, gate.spec)
    except waves.RolloutCanceled as canceled:  # Ctrl-C: the waves' records say so, then exit 130
        _end_rollout(runs, canceled.record)
        c.err.print(f"rollout canceled: {canceled.record['why']}", markup=False)
        raise
    finally:
        store.close()
    _end_rollout(runs, record)
    if record["outcome"] == "stopped":
        c.out.print(f"[red]rollout stopped[/]: {record['why']}", soft_wrap=True)
    else:
        c.out.print(f"rollout completed: {len(staged)} wave(s), {record['why']}", soft_wrap=True)
    return code


def _end_rollout(runs: list[RunDir], record: Mapping[str, Any]) -> None:
    """Every wave's run.json ends with the whole rollout (a wave interrupted before its run.json
    was written has none to end)."""
    for run in runs:
        try:
            meta = run.read_json("run.json")
        except (OSError, ValueError):
            continue
        wave = (meta.get("rollout") or {}).get("wave")
        if wave is not None:
            run.write_json("run.json", meta | {"rollout": dict(record) | {"wave": wave}})


def _verify_wave(
    c: Ctx,
    store: Recorder,
    job: _HardenJob,
    done: _Hardened,
    hosts: list[str],
    gate: Gate,
    index: int,
) -> waves.WavePlayed:
    """The hosts of a wave that failed: harden failed or unreachable (every host when the
    playbook itself failed), or verify (a finding the gate counts, or not probed). Busy hosts were
    left untouched and are not verified; nothing is verified in check mode (nothing changed).
    With --only-drifted the verify runs of the harden are the wave's (before, then after)."""
    from casemate import waves
    from casemate.harden import host_failed

    stats, messages = done.meta.get("stats") or {}, done.meta.get("messages") or {}
    failed = {h: _harden_said(messages.get(h)) for h in hosts if host_failed(stats.get(h) or {})}
    if done.outcome in ("failed", "canceled") and not failed:  # no host to blame: all of them
        runner = done.meta.get("runner") or {}
        why = f"ansible-playbook {runner.get('status')} (rc={runner.get('rc')})"
        failed = dict.fromkeys(hosts, why)
    busy = sorted(done.meta.get("busy") or {})
    runs: dict[str, Any] = {"harden_run": done.run.id, "harden_outcome": done.outcome}
    if busy:
        runs["busy"] = busy
    left = [h for h in hosts if h not in failed and h not in busy]
    if job.check or not left:
        said = "check mode changes nothing" if job.check else "no host left to verify"
        return waves.WavePlayed(done.code, runs | {"verify": f"skipped: {said}"}, failed)
    if job.only_drifted:
        docs = [d for d in (done.before, done.after) if d is not None]
        runs |= {"verify": "verified", "verify_runs": [str(d["run_id"]) for d in docs]}
    else:
        record = {"purpose": f"harden --waves: verify wave {index}", "follows": done.run.id}
        run, doc = job.again.verify(c, store, left, record)
        docs = [doc]
        runs |= {"verify": "verified", "verify_run": run.id}
    return waves.WavePlayed(done.code, runs, failed | waves.verify_failures(gate, docs, left))


def _harden_said(messages: list[str] | None) -> str:
    """Why a host failed harden, in one line (its first message)."""
    first = " ".join(str((messages or ["harden failed"])[0]).split())
    return f"harden: {first[:200]}"


@dataclass(frozen=True, slots=True)
class _Locks:
    acquired: hostlock.Acquired
    unreachable: dict[str, str]  # as said, redacted
    busy: dict[str, dict[str, Any]]  # the holders' records
    failed: dict[str, str]
    record: dict[str, Any]  # run.json's host_lock

    def taken(self) -> list[str]:
        """The hosts this run holds the lock of (none in check mode: it only looks)."""
        return list(self.acquired.held) if self.record["taken"] else []


def _host_locks(c: Ctx, inv: Inventory, hosts: list[str], run: RunDir, *, check: bool) -> _Locks:
    """One round trip per host: take the host lock (check mode only looks), which is the
    reachability check too (docs/harden.md); say what it came to."""
    from casemate import hostlock
    from casemate.harden import busy_said

    locks = hostlock.acquire(inv, hosts, run.id, take=not check)
    gone = {h: run.redactor.text(why) for h, why in locks.unreachable.items()}
    for host, why in gone.items():
        c.err.print(f"  [red]unreachable[/] {host}: {why} (no task will run there)")
    busy = {h: holder.record() for h, holder in locks.busy.items()}
    for host, record in busy.items():
        c.err.print(f"  {host}: {busy_said(record)}", style="yellow", markup=False)
    failed = {h: run.redactor.text(why) for h, why in locks.failed.items()}
    for host, why in failed.items():
        c.err.print(f"  {host}: host lock: {why} (no task will run there)", markup=False)
    for host, holder in locks.took_over.items():
        c.err.print(f"  {host}: took over the expired lock of run {holder.run_id}", markup=False)
    record = {
        "path": f"{hostlock.LOCK_DIR}/lock",
        "taken": not check,
        "ttl": hostlock.DEFAULT_TTL,
        "held": list(locks.held),
        "not_lockable": list(locks.unsupported),
        "took_over": {h: x.record() for h, x in locks.took_over.items()},
    }
    return _Locks(locks, gone, busy, failed, record)


def _locked_before_play(
    c: Ctx,
    inv: Inventory,
    harden_plan: HardenPlan,
    before: Mapping[str, Any] | None,
    run: RunDir,
    *,
    check: bool,
) -> tuple[_Locks, dict[str, str]]:
    """The host locks of the hosts to play, and every host no task will run on, with why. With
    --only-drifted the probe already told which hosts answer; only hosts with tags are locked
    (a host where nothing drifted is not played, so it is neither locked nor reached again)."""
    unprobed = (
        {h["name"]: str(h["error"]) for h in before["hosts"] if not h["probed"]}
        if before is not None
        else {}
    )
    playing = [h for h in harden_plan.hosts if h not in unprobed and harden_plan.host_tags(h)]
    locks = _host_locks(c, inv, playing, run, check=check)
    return locks, {h: run.redactor.text(why) for h, why in unprobed.items()} | locks.unreachable


def _connections(inv: Inventory, hosts: list[str]) -> dict[str, str]:
    """Each host's Ansible connection (what the strategy can drive)."""
    return {h: str(inv.hostvars(h).get("ansible_connection", "ssh")) for h in hosts}


def _check_run_options(strategy: str, forks: int, wait: float) -> None:
    from casemate import runlock

    if strategy not in STRATEGIES:
        raise BadInputError(f"--strategy must be one of {', '.join(STRATEGIES)}, not '{strategy}'")
    if forks < 1:
        raise BadInputError("--forks must be at least 1")
    runlock.check_wait(wait)


def _controller_lock(
    ctx: typer.Context, c: Ctx, inv: Inventory, command: str, wait: float
) -> runlock.ControllerLock:
    """The inventory's controller lock, held until the command ends (docs/schedule.md)."""
    from casemate import runlock

    held = runlock.acquire(c.state, inv, command=command, wait=wait)
    ctx.find_root().call_on_close(held.release)
    return held


def _release(c: Ctx, inv: Inventory, held: list[str], run: RunDir) -> None:
    from casemate import hostlock

    for host, why in hostlock.release(inv, held, run.id).items():
        c.err.print(f"  {host}: host lock not released: {why}", markup=False)


def _drift_first(
    c: Ctx, store: Recorder, harden_plan: HardenPlan, again: _Again
) -> tuple[dict[str, Any], HardenPlan]:
    """`harden --only-drifted`, first: every host probed once, as verify does (a verify run,
    recorded in the history: the "before" of each control's story), and the plan narrowed to
    what drifted on each host (drift.decide; shared tasks held back as waivers hold them)."""
    from casemate import drift
    from casemate.harden import shared_fixes

    c.err.print(f"only drifted: probing {len(harden_plan.hosts)} host(s) first")
    run, before = again.verify(
        c, store, harden_plan.hosts, {"purpose": "harden --only-drifted: before"}
    )
    plans = drift.decide(before, shared_fixes(content_root(), again.catalog))
    narrowed = replace(
        harden_plan,
        only={p.host: p.tags for p in plans},
        drift_record=drift.only_drifted_record(plans, run.id),
    )
    return before, narrowed


@dataclass(frozen=True, slots=True)
class _Again:
    """What the verify after `harden --only-drifted` probes with (as the verify before)."""

    catalog: Catalog
    inventory: Inventory
    entries: list[Entry]
    selection: Selection
    forks: int
    waivers: waivers.WaiverSet | None

    def verify(
        self, c: Ctx, store: Recorder, hosts: list[str], record: Mapping[str, Any]
    ) -> tuple[RunDir, dict[str, Any]]:
        """A verify run of `hosts` (recorded in the history, the store left open): the before or
        the after of `harden --only-drifted`, `record` saying which."""
        from casemate.rundir import new_run
        from casemate.verify import run_verify

        run = new_run(c.state, "verify", self.inventory.redactor(os.environ))
        doc = run_verify(
            run=run,
            catalog=self.catalog,
            inventory=self.inventory,
            hosts=hosts,
            entries=self.entries,
            selection=self.selection,
            forks=self.forks,
            command=sys.argv,
            on_host=_said_probed(c),
            waivers=self.waivers,
            record=record,
        )
        _record(c, store, run, close=False)
        return run, doc


def _after_drifted(
    c: Ctx,
    store: Recorder,
    harden_id: str,
    harden_plan: HardenPlan,
    before: Mapping[str, Any],
    again: _Again,
    *,
    check: bool,
    gone: Mapping[str, str],
    close: bool = True,
) -> dict[str, Any] | None:
    """`harden --only-drifted`, last: the hosts that were played verified again (a verify run,
    recorded: the "after" of each control's story; none in check mode), and before -> after per
    control shown. Closes the store (unless `close` is False: a wave of a rollout); returns the
    verify document after (None: no host was played, or check mode)."""
    from casemate.report import drift as drift_report

    played = [h for h in harden_plan.hosts if harden_plan.host_tags(h) and h not in gone]
    after = None
    if played and not check:
        run, after = again.verify(
            c, store, played, {"purpose": "harden --only-drifted: after", "follows": harden_id}
        )
        c.out.print(f"verified again: {run.path}", soft_wrap=True)
    if close:
        store.close()
    tags = {h: list(harden_plan.host_tags(h)) for h in harden_plan.hosts if h not in gone}
    for line in drift_report.before_after(before, after, tags):
        c.out.print(line, markup=False, highlight=False, soft_wrap=True)
    return after


def _say_before_play(
    c: Ctx,
    gone: Mapping[str, str],
    locks: _Locks,
    glass: Mapping[str, Any] | None,
    linear_why: str,
) -> None:
    """What happens before the play: hosts the probe could not reach (the lock round trip said
    its own), the break-glass paths, and why the strategy is linear."""
    for host, why in gone.items():
        if host not in locks.unreachable:
            c.err.print(f"  [red]unreachable[/] {host}: {why} (no task will run there)")
    for host, way in (glass or {}).items():
        proof = "proven" if way["proven"] else "declared, not provable by casemate"
        c.err.print(f"  break-glass {host}: {way['path']} ({proof})")
    if linear_why:
        c.err.print(f"  strategy linear: {linear_why} (--strategy to choose)", markup=False)


def _print_waived(c: Ctx, record: Mapping[str, Any]) -> None:
    """Warnings about waivers that match nothing in this run (what is waived is in the summary)."""
    for warning in record.get("warnings", []):
        c.err.print(f"  warning: {warning}", style="yellow", markup=False, highlight=False)


def _print_diffs(c: Ctx, run: RunDir) -> None:
    from casemate.report import progress

    for text in progress.diff_text(run.path / "ansible" / "artifacts"):
        c.out.print(text, markup=False, highlight=False)


def _print_harden(c: Ctx, run: RunDir, meta: dict[str, Any]) -> str:
    """Print a harden run's summary; return what it came to (see harden.run_outcome)."""
    from casemate.harden import run_outcome, stored_stats
    from casemate.report import harden as harden_report

    outcome = run_outcome(meta)
    stats = stored_stats(run, meta)
    c.out.print(harden_report.title(meta, outcome), soft_wrap=True)
    c.out.print(harden_report.table(meta, stats))
    for line in harden_report.failure_lines(meta, stats):
        c.out.print(line, soft_wrap=True)  # one line per host, however narrow the log is
    for line in [*harden_report.waiver_lines(meta), *harden_report.rollout_lines(meta)]:
        c.out.print(line, soft_wrap=True)
    return outcome


@app.command("rollback")
def rollback_cmd(
    ctx: typer.Context,
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="The harden run: id, prefix, path, latest-harden.")
    ],
    inventory: Annotated[
        Path | None,
        typer.Option("--inventory", "-i", help="Ansible inventory (default: the run's)."),
    ] = None,
    limit: LimitOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Show what would be restored; change nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Restore files that changed again since the run too."),
    ] = False,
    strategy: Annotated[
        str, typer.Option(help="Ansible strategy: " + ", ".join(STRATEGIES))
    ] = "auto",
    forks: ForksOpt = 10,
    wait: WaitOpt = 0.0,
) -> int:
    """Put back every file a harden run changed (content, owner, mode; files it created are
    removed), restart what reads them with harden's safety, then verify and show before -> after
    per control. A host where a file changed again since the run is refused (its diff shown)
    unless --force. Exit 3 if a host was refused, failed or unreachable (docs/fleet.md)."""
    from casemate import (
        hostlock,
        rollback,
    )
    from casemate.catalog.select import Selection, select
    from casemate.harden import busy_said, exit_code, run_outcome
    from casemate.report import progress
    from casemate.rundir import find_run, new_run
    from casemate.runner import HostStats, choose_strategy, resolve_inventory

    c = _ctx(ctx)
    _check_run_options(strategy, forks, wait)
    catalog = c.catalog()
    run = find_run(c.state, run_ref)
    meta = run.read_json("run.json")
    if meta.get("kind") == "harden" and inventory is None and not meta.get("inventory"):
        raise BadInputError(f"run {run.id} names no inventory: give --inventory")
    inv = resolve_inventory(inventory or Path(str(meta.get("inventory"))), c.state)
    back = rollback.plan(run, meta, inv, limit, force=force)
    selection = Selection(level=back.level, controls=back.controls, profile=back.profile)
    entries = select(catalog, selection) if back.controls else []
    held_inventory = _controller_lock(ctx, c, inv, "rollback", wait)
    store = _open_recorder(c, None)  # rollback only records: no SQLAlchemy to load
    for host, why in back.untouched.items():
        c.err.print(f"  {host}: {why}: nothing to roll back", markup=False)
    rb_run = new_run(c.state, "rollback", inv.redactor(os.environ))
    held_inventory.name_run(rb_run.id)
    c.err.print(
        f"rolling back run {back.run_id} on {len(back.hosts)} host(s)"
        f"{' (check mode)' if check else ''}{' (forced)' if force else ''}"
    )
    locks = _host_locks(c, inv, back.played(), rb_run, check=check)
    busy = {h: busy_said(r) for h, r in locks.busy.items()}
    gone = locks.unreachable | locks.failed | busy
    playable = [h for h in back.played() if h not in gone]
    chosen = choose_strategy(strategy, _connections(inv, playable))
    again = _Again(catalog, inv, entries, selection, forks, None)
    before = None
    if playable and entries and not check:
        _, before = again.verify(c, store, playable, {"purpose": f"rollback {rb_run.id}: before"})
    try:
        with (
            _recorded_if_interrupted(c, store, rb_run),
            hostlock.Renewal(inv, locks.taken(), rb_run.id),
            progress.HardenProgress(c.err, playable) as shown,
        ):
            outcome = rollback.run_rollback(
                run=rb_run,
                content=content_root(),
                catalog=catalog,
                inventory=inv,
                rollback_plan=back,
                hosts=playable,
                check=check,
                force=force,
                strategy=chosen.name,
                forks=forks,
                command=sys.argv,
                on_event=shown,
                unreachable=gone,
            )
    finally:
        _release(c, inv, locks.taken(), rb_run)
    rb_meta = rb_run.read_json("run.json")
    _print_rollback(c, rb_meta, outcome.records, check=check)
    ok = [h for h in playable if not (outcome.hosts.get(h) or HostStats()).failed]
    if before is not None and ok:
        vrun, after = again.verify(c, store, ok, {"purpose": f"rollback {rb_run.id}: after"})
        c.out.print(f"verified again: {vrun.path}", soft_wrap=True)
        for line in rollback.changed_controls(before, after, ok):
            c.out.print(line, markup=False, highlight=False, soft_wrap=True)
    _record(c, store, rb_run)
    c.err.print(f"run stored in {rb_run.path}", soft_wrap=True)
    return exit_code(run_outcome(rb_meta))


def _print_rollback(
    c: Ctx, meta: Mapping[str, Any], records: Mapping[str, Mapping[str, Any]], *, check: bool
) -> None:
    """Per host: what was (or would be) restored, or why it was refused, with the diff."""
    from casemate.harden import host_failed

    restored = meta.get("restored") or {}
    for host, stats in (meta.get("stats") or {}).items():
        done = restored.get(host) or {}
        if host_failed(stats):  # the last message: the one the host failed with
            said = ((meta.get("messages") or {}).get(host) or ["failed"])[-1]
            c.out.print(f"{host}: [red]not rolled back[/]: {said}", soft_wrap=True)
            for refused in (records.get(host) or {}).get("refused") or []:
                c.out.print(str(refused.get("diff") or ""), markup=False, highlight=False)
            continue
        verb = "would restore" if check else "restored"
        files = done.get("files") or []
        removed = set(done.get("removed") or [])
        c.out.print(f"{host}: {verb} {len(files)} file(s)", markup=False, soft_wrap=True)
        for path in files:
            how = "removed (the run made it)" if path in removed else "as before the run"
            c.out.print(f"  {path}: {how}", markup=False, highlight=False, soft_wrap=True)
        if done.get("restarted"):
            verb = "would restart" if check else "restarted"
            c.out.print(f"  {verb}: {', '.join(done['restarted'])}", markup=False)


# --- verify and report --------------------------------------------------------------------------


@app.command("verify")
def verify_cmd(  # noqa: PLR0915 - its imports (made here, see the top) count as statements
    ctx: typer.Context,
    inventory: InventoryOpt,
    limit: LimitOpt = None,
    controls: ControlsOpt = None,
    level: LevelOpt = 1,
    report_dir: Annotated[
        Path | None,
        typer.Option("--report-dir", help="Also write the reports (--format) here."),
    ] = None,
    report_formats: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"Reports written to --report-dir, comma-separated: {', '.join(formats.NAMES)} "
            "or all (default: all).",
        ),
    ] = None,
    forks: ForksOpt = 10,
    profile: ProfileOpt = "standard",
    waiver_file: WaiversOpt = None,
    no_waivers: NoWaiversOpt = False,
    fail_on: FailOnOpt = "any",
    metrics_file: MetricsOpt = None,
    wait: WaitOpt = 0.0,
    fresh_proofs: Annotated[
        bool,
        typer.Option(
            "--fresh-proofs",
            help="Start every container proof anew (seccomp, gVisor): by default a host reuses "
            "the last one that held while nothing it depends on changed.",
        ),
    ] = False,
) -> int:
    """Probe every host once, judge every selected control, record the run (report.json and
    junit.xml in the run directory) and write the chosen reports to --report-dir."""
    from casemate import runlock
    from casemate.catalog.select import Selection, parse_controls, select
    from casemate.gate import parse_fail_on
    from casemate.report import changes
    from casemate.rundir import new_run
    from casemate.runner import resolve_inventory
    from casemate.verify import run_verify

    c = _ctx(ctx)
    if forks < 1:
        raise BadInputError("--forks must be at least 1")
    runlock.check_wait(wait)
    if report_formats is not None and report_dir is None:
        raise BadInputError("--format needs --report-dir")
    chosen = formats.parse(report_formats or "all")
    catalog = c.catalog()
    selection = Selection(level=level, controls=parse_controls(controls), profile=profile)
    entries = select(catalog, selection)
    gate = parse_fail_on(fail_on, catalog.benchmarks())
    found = _waivers(c, catalog, waiver_file, no_waivers)
    if report_dir is not None and report_dir.exists() and not report_dir.is_dir():
        raise BadInputError(f"--report-dir {report_dir}: not a directory")
    if report_dir is not None:  # made now, before the inventory is read (that can take a while)
        _writable_dir(report_dir, "--report-dir")
    inv = resolve_inventory(inventory, c.state)
    hosts = inv.select(limit)
    held_inventory = _controller_lock(ctx, c, inv, "verify", wait)
    # --metrics-file reads the history store (what drifted since the last run): SQLAlchemy's
    full = _open_history(c, metrics_file) if metrics_file is not None else None
    store = full if full is not None else _open_recorder(c, None)
    run = new_run(c.state, "verify", inv.redactor(os.environ))
    held_inventory.name_run(run.id)
    c.err.print(f"verifying {len(hosts)} host(s) against {len(entries)} controls, level {level}")
    began = time.monotonic()
    # the renderers' slow imports (the table's, the chosen formats') happen while the hosts are
    # probed, not after
    warm = threading.Thread(target=_warm_up, args=(chosen if report_dir else [],))
    warm.start()
    with _recorded_if_interrupted(c, store, run):
        doc = run_verify(
            run=run,
            catalog=catalog,
            inventory=inv,
            hosts=hosts,
            entries=entries,
            selection=selection,
            forks=forks,
            command=sys.argv,
            on_host=_said_probed(c),
            waivers=found,
            gate=gate,
            fresh_proofs=fresh_proofs,
        )
    warm.join()
    from casemate.report import table  # imported by _warm_up

    written = [run.path / "report.json", run.path / "junit.xml"]
    if report_dir is not None:
        written = formats.write(
            report_dir, doc, chosen, lambda: changes.since_previous(run.path, doc)
        )
    c.out.print(table.render(doc))
    c.err.print(f"verify took {time.monotonic() - began:.1f}s")
    for path in written:
        c.out.print(f"{path.name}: {path}", soft_wrap=True)
    c.out.print(f"run: {run.path}", soft_wrap=True)
    drifted = _drifted(full, doc) if full is not None else None
    recorded = _record(c, store, run)
    if metrics_file is not None:
        from casemate import metrics

        meta = run.read_json("run.json")
        registry = metrics.verify_registry(
            doc, meta, recorded=recorded, drifted=drifted if recorded else None
        )
        metrics.write(metrics_file, registry)
    return _gated(c, gate, doc)


@app.command("drift")
def drift_cmd(
    ctx: typer.Context,
    inventory: InventoryOpt,
    limit: LimitOpt = None,
    controls: ControlsOpt = None,
    level: LevelOpt = 1,
    forks: ForksOpt = 10,
    profile: ProfileOpt = "standard",
    waiver_file: WaiversOpt = None,
    no_waivers: NoWaiversOpt = False,
    fail_on: FailOnOpt = "any",
    metrics_file: MetricsOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json (drift.json)")] = "table",
    wait: WaitOpt = 0.0,
) -> int:
    """Probe every host once and name the controls that drifted, each with what was expected,
    what is there now and what the fix would change (the role's check-mode diff of just those
    controls' tags; what the probe cannot judge runs in check mode too). Exit 0 no drift, 1
    drift (--fail-on narrows it), 2 bad input, 3 a host failed."""
    from casemate import (
        drift,
        runlock,
    )
    from casemate.catalog.select import Selection, parse_controls, select
    from casemate.gate import parse_fail_on
    from casemate.harden import shared_fixes
    from casemate.report import drift as drift_report
    from casemate.rundir import new_run
    from casemate.runner import choose_strategy, resolve_inventory

    c = _ctx(ctx)
    _check_format(fmt, ("table", "json"))
    if forks < 1:
        raise BadInputError("--forks must be at least 1")
    runlock.check_wait(wait)
    catalog = c.catalog()
    selection = Selection(level=level, controls=parse_controls(controls), profile=profile)
    entries = select(catalog, selection)
    gate = parse_fail_on(fail_on, catalog.benchmarks())
    found = _waivers(c, catalog, waiver_file, no_waivers)
    inv = resolve_inventory(inventory, c.state)
    hosts = inv.select(limit)
    content = content_root()
    shared = shared_fixes(content, catalog)
    held_inventory = _controller_lock(ctx, c, inv, "drift", wait)
    store = _open_recorder(c, metrics_file)
    chosen = choose_strategy("auto", _connections(inv, hosts))
    run = new_run(c.state, "drift", inv.redactor(os.environ))
    held_inventory.name_run(run.id)
    c.err.print(f"drift: {len(hosts)} host(s), {len(entries)} controls, level {level}")
    began = time.monotonic()
    with _recorded_if_interrupted(c, store, run):
        done = drift.run_drift(
            run=run,
            content=content,
            catalog=catalog,
            inventory=inv,
            hosts=hosts,
            entries=entries,
            selection=selection,
            forks=forks,
            command=sys.argv,
            strategy=chosen.name,
            shared=shared,
            waivers=found,
            on_host=_said_probed(c),
        )
    if fmt == "json":
        typer.echo(json.dumps(done.doc, indent=2, sort_keys=True))
    else:
        for line in drift_report.lines(done.doc):
            c.out.print(line, markup=False, highlight=False, soft_wrap=True)
        c.out.print(f"drift.json: {run.path / 'drift.json'}", soft_wrap=True)
        c.out.print(f"run: {run.path}", soft_wrap=True)
    c.err.print(f"drift took {time.monotonic() - began:.1f}s")
    recorded = _record(c, store, run)
    if metrics_file is not None:
        from casemate import metrics

        meta = run.read_json("run.json")
        registry = metrics.drift_registry(done.report, done.doc, meta, recorded=recorded)
        metrics.write(metrics_file, registry)
    code = drift.exit_code(done.doc, gate)
    if gate.spec != "any" and code != 3:
        counted = sum(gate.selects(x) for _, x in drift.drifted_controls(done.doc))
        c.err.print(f"--fail-on {gate.spec}: {counted} drifted control(s) count", markup=False)
    return code


def _warm_up(chosen: list[formats.Format]) -> None:
    """Import what verify renders once its hosts have answered: the result table and the chosen
    report formats' slow modules (formats.preload)."""
    formats.preload(chosen)
    importlib.import_module("casemate.report.table")


def _said_probed(c: Ctx) -> Any:
    def on_host(h: HostVerification) -> None:
        if h.outcome.observations is None:
            c.err.print(f"  [red]{h.host}: {h.outcome.error}[/]")
        else:
            c.err.print(
                f"  {h.host}: probed in {h.outcome.raw.get('elapsed_ms')} ms (one round trip)"
            )

    return on_host


def _gated(c: Ctx, gate: Gate, doc: Mapping[str, Any]) -> int:
    """The exit status `gate` gives `doc`: the one the document records (Gate.record) when it
    records this gate; said on stderr when the gate is narrower than `any`."""
    recorded = doc.get("gate")
    if not (isinstance(recorded, Mapping) and recorded.get("fail_on") == gate.spec):
        recorded = gate.record(doc, when="verify")
    code = int(recorded["exit_code"])
    if gate.spec != "any" and code != 3:
        c.err.print(f"--fail-on {gate.spec}: {recorded['findings']} finding(s) count", markup=False)
    return code


def _drifted(store: Store, doc: dict[str, Any]) -> dict[str, int] | None:
    """Per host: the controls that passed in the host's last recorded result before this run and
    fail in it. None when the history cannot be read (the metric is then left out)."""
    from casemate.history.record import when

    hosts = [h["name"] for h in doc["hosts"]]
    started = when(doc["started"])
    if started is None:
        return None
    try:
        before = store.last_statuses(hosts, before=started)
    except CasemateError:
        return None
    out = dict.fromkeys(hosts, 0)
    for r in doc["results"]:
        if r["status"] == "fail" and before.get((r["host"], r["control_id"])) == "pass":
            out[r["host"]] += 1
    return out


@app.command("report")
def report_cmd(
    ctx: typer.Context,
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="Run id, prefix, path, or latest[-verify|-harden].")
    ],
    fmt: Annotated[
        str,
        typer.Option("--format", help=f"table (terminal) or one of {', '.join(formats.NAMES)}."),
    ] = "table",
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Write the format to this file (0600), not stdout."),
    ] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="Write every report format here.")
    ] = None,
    waiver_file: WaiversOpt = None,
    no_waivers: NoWaiversOpt = False,
    fail_on: FailOnOpt = "any",
) -> int:
    """Re-render a stored run. With a waiver file, a verify run's results are judged against it
    anew, today, and the report says so."""
    from casemate import private
    from casemate.gate import parse_fail_on
    from casemate.harden import exit_code, run_outcome
    from casemate.report import changes, document, table
    from casemate.rundir import find_run, now_utc

    c = _ctx(ctx)
    _check_report_targets(fmt, output, report_dir)
    catalog = c.catalog()
    gate = parse_fail_on(fail_on, catalog.benchmarks())
    run = find_run(c.state, run_ref)
    meta = run.read_json("run.json")
    if meta.get("kind") == "harden":
        if fmt != "table":
            raise BadInputError("a harden run has only the table format")
        if waiver_file is not None:
            raise BadInputError("--waivers: a harden run keeps the waivers it ran with")
        return exit_code(_print_harden(c, run, meta))
    if not (run.path / "report.json").is_file():
        came_to = run_outcome(meta)
        raise BadInputError(f"verify run {run.id} has no report: it is {came_to}")
    doc = run.read_json("report.json")
    try:
        document.validate(doc)
    except Exception as exc:
        raise BadInputError(
            f"{run.path / 'report.json'}: does not match the report schema: {exc}"
        ) from None
    found = _waivers(c, catalog, waiver_file, no_waivers)
    if found is not None:
        doc = document.with_waivers(doc, found, now_utc().date(), when="report")
    applied = gate.record(doc, when="report")
    if doc.get("gate", {}) | {"when": "report"} != applied:  # what verify recorded stands when
        doc = dict(doc) | {"gate": applied}  # the same gate gave the same; else the reports say

    _writable_targets(output, report_dir)

    def since() -> changes.Changes | None:
        return changes.since_previous(run.path, doc)

    if report_dir is not None:
        formats.write(report_dir, doc, formats.FORMATS, since)
    if fmt == "table":
        c.out.print(table.render(doc))
    elif output is not None:
        chosen = formats.get(fmt)
        private.write(output, chosen.render(doc, since() if chosen.uses_changes else None))
    else:
        chosen = formats.get(fmt)
        typer.echo(chosen.render(doc, since() if chosen.uses_changes else None), nl=False)
    return _gated(c, gate, doc)


def _writable_targets(output: Path | None, report_dir: Path | None) -> None:
    if report_dir is not None:
        _writable_dir(report_dir, "--report-dir")
    if output is not None:
        _writable_dir(output.parent, "-o")


def _check_report_targets(fmt: str, output: Path | None, report_dir: Path | None) -> None:
    _check_format(fmt, ("table", *formats.NAMES))
    if output is not None and fmt == "table":
        raise BadInputError("-o needs a --format other than table")
    if output is not None and output.is_dir():
        raise BadInputError(f"-o {output}: is a directory")
    if report_dir is not None and report_dir.exists() and not report_dir.is_dir():
        raise BadInputError(f"--report-dir {report_dir}: not a directory")


# --- evidence -----------------------------------------------------------------------------------


@evidence_app.command("keygen")
def evidence_keygen(
    ctx: typer.Context,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", "-o", help="Where to write the key pair (default: STATE/keys)."),
    ] = None,
) -> None:
    """Make an Ed25519 key pair: evidence.key (0600) and evidence.pub (0644); never overwrites."""
    from casemate import private
    from casemate.evidence import keys

    c = _ctx(ctx)
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise BadInputError(f"--out-dir {out_dir}: not a directory")
    directory = out_dir if out_dir is not None else c.state / "keys"
    for name in (keys.PRIVATE_NAME, keys.PUBLIC_NAME):  # refused before a directory is made
        if (directory / name).exists() or (directory / name).is_symlink():
            raise BadInputError(f"{directory / name}: already exists (a key is never overwritten)")
    if out_dir is None:
        private.state_dir(c.state, "keys")
    _writable_dir(directory, "--out-dir")
    pair = keys.generate(directory)
    c.out.print(f"private key: {pair.private}", soft_wrap=True)
    c.out.print(f"public key:  {pair.public}", soft_wrap=True)
    c.out.print(f"key id:      {pair.keyid}", soft_wrap=True)


@evidence_app.command("export")
def evidence_export(
    ctx: typer.Context,
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="Run id, prefix, path, or latest[-verify|-harden].")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The bundle (FILE.tar.gz).")],
    key: Annotated[
        Path | None, typer.Option("--key", help="Sign with this Ed25519 private key (PEM).")
    ] = None,
    harden: Annotated[
        str | None,
        typer.Option("--harden", help="The harden run the verify run followed (its events too)."),
    ] = None,
) -> None:
    """Bundle a stored run (and the harden it followed) with the catalog and versions it used,
    with a manifest of every file's SHA-256, signed as an in-toto Statement in a DSSE envelope."""
    from casemate.evidence import bundle, keys
    from casemate.rundir import find_run

    c = _ctx(ctx)
    if output.is_dir():
        raise BadInputError(f"--output {output}: is a directory")
    signer = keys.load_private(key) if key is not None else None
    run = find_run(c.state, run_ref)
    followed = find_run(c.state, harden) if harden is not None else None
    _writable_dir(output.parent, "--output")
    done = bundle.export(run, output, harden=followed, key=signer, catalog_dir=c.catalog_dir)
    how = f"signed by key {done.keyid}" if done.keyid else "unsigned: verify will say so (exit 4)"
    c.out.print(f"bundle: {done.path} ({done.files} files, {how})", soft_wrap=True)


@evidence_app.command("verify")
def evidence_verify(
    ctx: typer.Context,
    bundle_path: Annotated[Path, typer.Argument(metavar="BUNDLE", help="FILE.tar.gz")],
    pub: Annotated[Path, typer.Option("--pub", help="The signer's Ed25519 public key (PEM).")],
) -> None:
    """Check a bundle's signature, then every file against the signed manifest. Exit 0 verified,
    2 not a bundle or not a key, 4 bad or missing signature, 5 a file changed, added or removed,
    6 signed by another key."""
    from casemate.evidence import bundle, keys

    c = _ctx(ctx)
    key = keys.load_public(pub)
    checked = bundle.check(bundle_path, key)
    run = checked.predicate.get("run") or {}
    c.out.print(
        f"verified: {bundle_path}: {checked.files} files match the manifest signed by key "
        f"{checked.keyid} (run {run.get('id')}, {run.get('kind')}, {run.get('outcome')})",
        soft_wrap=True,
    )


# --- history ------------------------------------------------------------------------------------


HISTORY_RUNS = 20  # `casemate history` shows the results of this many runs unless told


def _since(raw: str | None) -> datetime | None:
    """--since: an ISO date or date and time (UTC unless it says otherwise)."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise BadInputError(
            f"--since must be a date (2026-01-31) or a date and time (2026-01-31T08:00), "
            f"not '{raw}'"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@history_app.callback(invoke_without_command=True)
def history_cmd(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Only this host.")] = None,
    control: Annotated[str | None, typer.Option("--control", help="Only this control id.")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Changes since this date (UTC): 2026-01-31.")
    ] = None,
    regressions: Annotated[
        bool, typer.Option("--regressions", help="Only controls that went from pass to fail.")
    ] = False,
    fmt: FormatOpt = "table",
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            help=f"Only the results of the last N runs (default: {HISTORY_RUNS} for the table; "
            "JSON is complete unless --limit is given; 0: every run).",
        ),
    ] = None,
) -> None:
    """Each control's timeline per host: status changes with run ids and times, when it first
    failed, when it was fixed and by which run; or --regressions (pass -> fail since a date)."""
    if ctx.invoked_subcommand is not None:
        return
    from casemate.history import timeline
    from casemate.history.store import FILE_NAME, open_store
    from casemate.report import history as shown

    c = _ctx(ctx)
    _check_format(fmt, ("table", "json"))
    after = _since(since)
    if limit is not None and limit < 0:
        raise BadInputError(f"--limit must be a number of runs (0: every run), not {limit}")
    last_runs = (limit if limit is not None else 0 if fmt == "json" else HISTORY_RUNS) or None
    if c.db is None and not (c.state / FILE_NAME).is_file():  # reading makes no store
        raise BadInputError(f"no history store in {c.state} yet (no run recorded; or give --db)")
    store = open_store(c.db, c.state)
    try:
        rows = store.observed(host=host, control=control, since=after, last_runs=last_runs)
        first = min((o.at for o in rows), default=None) if last_runs else None
        played = [] if regressions else store.played(host=host, since=first)
        found_in = store.result_runs(host=host, control=control, since=after) if last_runs else 0
    finally:
        store.close()
    if last_runs is not None and found_in > last_runs:
        c.err.print(
            f"history: the results of the last {last_runs} of {found_in} runs "
            "(--limit N for more, --limit 0 for every run)",
            markup=False,
        )
    if regressions:
        found = timeline.regressions(rows, since=after)
        if fmt == "json":
            typer.echo(shown.as_json(shown.regressions_doc(found)))
        else:
            c.out.print(shown.regressions_table(found))
        return
    lines = timeline.timelines(rows, played, since=after)
    if fmt == "json":
        typer.echo(shown.as_json(shown.timelines_doc(lines)))
    else:
        c.out.print(shown.timelines_table(lines))


@history_app.command("import")
def history_import_cmd(
    ctx: typer.Context,
    run_ref: Annotated[
        str, typer.Argument(metavar="RUN", help="Run id, prefix, path, or latest[-verify|-harden].")
    ],
) -> None:
    """Record a stored run in the history store (again: it replaces its earlier record)."""
    from casemate.history.record import read_run
    from casemate.history.store import open_store
    from casemate.rundir import find_run

    c = _ctx(ctx)
    run = find_run(c.state, run_ref)
    record = read_run(run.path)
    store = open_store(c.db, c.state)
    try:
        store.record(record)
    finally:
        store.close()
    c.out.print(
        f"recorded {record.kind} run {record.id} ({record.outcome}, {len(record.results)} "
        f"results) in {store.shown}",
        markup=False,
    )


# --- schedule -----------------------------------------------------------------------------------

ScheduleNameOpt = Annotated[
    str | None,
    typer.Option("--name", help="The units' name (default: casemate-<inventory file's stem>)."),
]
UserOpt = Annotated[
    bool,
    typer.Option("--user", help="User units (~/.config/systemd/user), not system units."),
]


def _schedule_name(name: str | None, inventory: Path | None) -> str:
    from casemate import schedule

    if name is not None:
        return schedule.check_name(name)
    if inventory is None:
        raise BadInputError("name the schedule: --name NAME or -i INVENTORY")
    return schedule.default_name(inventory)


def _casemate_executable() -> Path:
    beside = Path(sys.executable).parent / "casemate"  # a venv's bin, never resolved
    found = beside if beside.is_file() else shutil.which("casemate")
    if found is None:
        raise EnvironmentProblemError("cannot find the casemate executable to schedule")
    return Path(found).absolute()


@schedule_app.command("install")
def schedule_install(
    ctx: typer.Context,
    inventory: InventoryOpt,
    every: Annotated[
        str, typer.Option("--every", help="How often: a systemd time span (15min, 1h, 1d).")
    ],
    remediate: Annotated[
        bool,
        typer.Option("--remediate", help="Fix what drifted (harden), not only look (the default)."),
    ] = False,
    level: LevelOpt = 1,
    profile: ProfileOpt = "standard",
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="History store URL for the runs (default: casemate --db / $CASEMATE_DB)."
        ),
    ] = None,
    metrics_file: MetricsOpt = None,
    user: UserOpt = False,
    name: ScheduleNameOpt = None,
) -> None:
    """Write a systemd service and timer that run casemate on INVENTORY every SPAN, logging to
    the journal, under the inventory's controller lock; start the timer."""
    from casemate import (
        private,
        schedule,
    )
    from casemate.catalog.select import Selection, select
    from casemate.runner import resolve_inventory

    c = _ctx(ctx)
    schedule.parse_every(every)
    unit_name = _schedule_name(name, inventory)
    if not user and os.geteuid() != 0:
        raise BadInputError("system units need root: run as root, or pass --user")
    select(c.catalog(), Selection(level=level, profile=profile))  # level and profile exist
    source = inventory.absolute()
    resolve_inventory(source, c.state)
    url = db if db is not None else c.db
    if url is not None or metrics_file is not None:
        _open_history(c.with_db(url), metrics_file).close()  # reachable, right schema
    state = private.state_dir(c.state)
    spec = schedule.Spec(
        name=unit_name,
        casemate=_casemate_executable(),
        state=state,
        inventory=source,
        every=every.strip(),
        workdir=Path.cwd(),
        remediate=remediate,
        level=level,
        profile=profile,
        metrics_file=metrics_file.absolute() if metrics_file is not None else None,
        env_file=private.state_dir(state, "schedule") / f"{unit_name}.env" if url else None,
        user=user,
    )
    written = schedule.install(spec, url)
    c.out.print(f"installed schedule {unit_name}: every {spec.every}", markup=False)
    c.out.print(f"runs: {' '.join(schedule.command_line(spec))}", soft_wrap=True, markup=False)
    for path in written:
        c.out.print(f"wrote {path}", soft_wrap=True, markup=False)


@schedule_app.command("status")
def schedule_status(
    ctx: typer.Context,
    name: ScheduleNameOpt = None,
    inventory: Annotated[
        Path | None, typer.Option("--inventory", "-i", help="The schedule of this inventory.")
    ] = None,
    user: UserOpt = False,
    fmt: FormatOpt = "table",
) -> None:
    """The timer's state, its last and next run, and the last run's outcome from the state
    directory."""
    from casemate import schedule

    c = _ctx(ctx)
    _check_format(fmt, ("table", "json"))
    unit_name = _schedule_name(name, inventory)
    found = schedule.installed(unit_name, user)
    timer = schedule.show(user, f"{unit_name}.timer", schedule.TIMER_PROPS)
    service = schedule.show(user, f"{unit_name}.service", schedule.SERVICE_PROPS)
    last = schedule.last_run(Path(found["state"]), found["inventory"])
    doc = {"schedule": found, "timer": timer, "service": service, "last_run": last}
    if fmt == "json":
        typer.echo(json.dumps(doc, indent=2))
        return
    what = "remediate" if found.get("remediate") else "check"
    lines = [
        f"schedule {unit_name}: every {found['every']}, {what}, inventory {found['inventory']}",
        f"  timer: {timer.get('ActiveState') or 'unknown'}; last run "
        f"{timer.get('LastTriggerUSec') or 'never'}; next run "
        f"{timer.get('NextElapseUSecRealtime') or 'not planned'}",
        f"  service: {service.get('ActiveState') or 'unknown'} (result "
        f"{service.get('Result') or '-'}, last exit status {service.get('ExecMainStatus') or '-'})",
        "  last run: "
        + (
            f"{last['id']} ({last['kind']}, started {last['started']}): {last['outcome']}"
            if last
            else "none recorded yet"
        ),
        f"  journal: journalctl {'--user ' if user else ''}-u {unit_name}.service",
    ]
    for line in lines:
        c.out.print(line, soft_wrap=True, markup=False)


@schedule_app.command("remove")
def schedule_remove(
    ctx: typer.Context,
    name: ScheduleNameOpt = None,
    inventory: Annotated[
        Path | None, typer.Option("--inventory", "-i", help="The schedule of this inventory.")
    ] = None,
    user: UserOpt = False,
) -> None:
    """Stop and disable the timer, and remove the units (and their environment file)."""
    from casemate import schedule

    c = _ctx(ctx)
    unit_name = _schedule_name(name, inventory)
    for path in schedule.remove(unit_name, user):
        c.out.print(f"removed {path}", soft_wrap=True, markup=False)


# --- collection ---------------------------------------------------------------------------------


@collection_app.command("build")
def collection_build_cmd(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where to write the tarball (default: ./dist)."),
    ] = Path("dist"),
) -> None:
    """Build casemate-hardening-VERSION.tar.gz from the roles and playbooks casemate runs."""
    from casemate import collection

    c = _ctx(ctx)
    tarball = collection.build(content_root(), output)
    c.out.print(f"collection {collection.FQCN} {__version__}: {tarball}", soft_wrap=True)


# --- entry point --------------------------------------------------------------------------------


INTERRUPTED = 130  # 128 + SIGINT, as shells report it
TERMINATED = 143  # 128 + SIGTERM


def _fail(message: str, code: int) -> None:
    first = " ".join(message.split())  # always exactly one line
    sys.stderr.write(f"casemate: error: {first}\n")
    raise SystemExit(code)


ROOT_VALUE_OPTIONS = ("--catalog", "--state-dir", "--db")  # _root's options that take a value


def _first_word(args: list[str], value_options: tuple[str, ...]) -> tuple[str, list[str]] | None:
    """The first word of `args` that is not an option nor an option's value, and the args after
    it; None when an option comes first that is not one of `value_options` (--help, a typo): the
    whole command line interface answers those."""
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word in value_options:
            rest = rest[1:]
        elif not (word.startswith("-") and word.split("=", 1)[0] in value_options):
            return None if word.startswith("-") else (word, rest)
    return None


def _command_name(info: CommandInfo) -> str:
    return info.name or (info.callback.__name__.lower().replace("_", "-") if info.callback else "")


def only_named(
    group: typer.Typer, args: list[str], value_options: tuple[str, ...] = ()
) -> typer.Typer:
    """`group` with only the command (or sub-group, in turn narrowed) that `args` names, when they
    name one: typer builds every command it holds (each one's options, from its signature) before
    it runs any, so a command line that names one pays for that one alone. Anything else (no
    command, --help first, an unknown name) gets `group` whole, so help and errors read the same."""
    found = _first_word(args, value_options)
    if found is None:
        return group
    word, rest = found
    narrowed = copy.copy(group)  # the lists are replaced below, never changed in place
    for command in group.registered_commands:
        if _command_name(command) == word:
            narrowed.registered_commands, narrowed.registered_groups = [command], []
            return narrowed
    for sub in group.registered_groups:
        if sub.name == word and sub.typer_instance is not None:
            inner = copy.copy(sub)
            inner.typer_instance = only_named(sub.typer_instance, rest)
            narrowed.registered_commands, narrowed.registered_groups = [], [inner]
            return narrowed
    return group


def main(argv: list[str] | None = None) -> None:
    """Console script. Errors are one line on stderr; exit 2 for bad input, 3 for a failed run."""
    interrupts.on_sigterm()  # SIGTERM ends a run as Ctrl-C does: recorded, its locks released
    args = sys.argv[1:] if argv is None else argv
    try:
        lean = only_named(app, args, ROOT_VALUE_OPTIONS)
        code = lean(args=args, prog_name="casemate", standalone_mode=False)
    except ClickException as exc:
        _fail(exc.format_message(), 2)
    except CasemateError as exc:
        _fail(str(exc), exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        code = INTERRUPTED
    if code == INTERRUPTED:  # typer turns Ctrl-C into this exit status itself; no command does
        if interrupts.was_terminated():
            _fail("terminated (SIGTERM)", TERMINATED)
        _fail("interrupted", INTERRUPTED)
    raise SystemExit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
