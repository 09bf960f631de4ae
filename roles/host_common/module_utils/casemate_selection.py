"""Which of a role's controls a run selects. Not a host reader: a sibling of casemate_host.py that
the roles' facts modules import (as ansible.module_utils.casemate_selection) so that a role can
decide every control in its one module call instead of one task per control, and still change
only what the run selected. casemate selects controls with `--tags` (their ids); the roles pass
Ansible's own record of it (`ansible_run_tags`, `ansible_skip_tags`). Standard library only,
python3 >= 3.6."""


def selected_controls(ids, run_tags, skip_tags):
    """The `ids`, in order, that the run selects: those Ansible would run a task for if the task
    were tagged with that id alone (no `always`, no `never`): run for `all` (a run without
    --tags), `tagged` or the id itself, unless --skip-tags names `all`, `tagged` or the id."""
    run = set(run_tags or ["all"])
    skip = set(skip_tags or [])
    out = []
    for ident in ids:
        if run & {"all", "tagged", ident} and not skip & {"all", "tagged", ident}:
            out.append(ident)
    return out


def step_runs(ids, run_tags, skip_tags):
    """Whether Ansible runs a step tagged with every one of `ids`: one of them (or all, tagged) is
    selected, and --skip-tags names none of them (nor all, tagged)."""
    tags = set(ids) | {"all", "tagged"}
    return bool(set(run_tags or ["all"]) & tags) and not set(skip_tags or []) & tags
