"""image_rule: a judgement about every local image (healthcheck, build steps, files in layers).
Report-only: findings name each image; images are never changed or removed."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from casemate.checks.base import Observations, Params, Probe, Status, Verdict, error_of
from casemate.checks.dockerd import DOCKERD, cli_failure
from casemate.checks.workloads import HISTORY, IMAGE_FILES, IMAGES, image_name, inspected, listing

Rule = Literal["healthcheck", "update_layers", "add_layers", "setuid_files", "secret_files"]

_UPDATE = re.compile(r"\b(apt-get|apt|yum|dnf|apk|zypper|microdnf)\b[^&;|]*\bupdate\b")
_INSTALL = re.compile(r"\b(install|upgrade|add)\b")
_ADD = re.compile(r"(^|#\(nop\)\s+|^/bin/sh -c #\(nop\) )ADD\s")

TEXT = {
    "healthcheck": "every image declares a HEALTHCHECK",
    "update_layers": "no image has a package-index update in a layer of its own",
    "add_layers": "no image layer (above the base) was made with ADD",
    "setuid_files": "no image contains setuid or setgid files",
    "secret_files": "no image layer contains private keys or credential files",
}


class ImageRuleParams(Params):
    rule: Rule


def _history(obs: Observations) -> tuple[dict[str, list[str]], str | None]:
    """image id -> its layers' commands, newest first."""
    raw = obs.get(HISTORY)
    err = cli_failure(raw, quiet=True)
    if err:
        return {}, f"docker history: {err}"
    out: dict[str, list[str]] = {}
    for line in str(raw.get("stdout", "")).splitlines():
        ident, _, created = line.partition(" ")
        try:
            out.setdefault(ident, []).append(str(json.loads(created)))
        except ValueError:
            out.setdefault(ident, []).append(created)
    return out, None


def _finding(
    rule: str, image: Mapping[str, Any], layers: list[str], scan: Mapping[str, Any]
) -> str | None:
    name = image_name(image)
    if rule == "healthcheck":
        test = (image.get("Config") or {}).get("Healthcheck") or {}
        return (
            None
            if test.get("Test") and test.get("Test") != ["NONE"]
            else f"{name} has no HEALTHCHECK"
        )
    if rule == "update_layers":
        bad = [c for c in layers if _UPDATE.search(c) and not _INSTALL.search(_UPDATE.sub("", c))]
        return f"{name}: {bad[0][:120]}" if bad else None
    if rule == "add_layers":
        bad = [c for c in layers[:-1] if _ADD.search(c.strip())]  # the last layer is the base
        return f"{name}: {bad[0][:120]}" if bad else None
    key = "setuid" if rule == "setuid_files" else "secrets"
    files = scan.get(key) or []
    return f"{name}: {', '.join(files[:5])}{' ...' if len(files) > 5 else ''}" if files else None


def _scans(
    obs: Observations, images: list[dict[str, Any]]
) -> tuple[dict[str, Mapping[str, Any]], str | None]:
    """image id -> its layer scan. A scan that failed, or an image the scan never saw (pulled
    after it listed the images), is an error: an image not scanned has not been found clean."""
    raw = obs.get(IMAGE_FILES)
    err = error_of(raw)
    if err:
        return {}, err
    scans = {str(s.get("id")): s for s in raw.get("images") or [] if isinstance(s, Mapping)}
    for ident, scan in scans.items():
        if error_of(scan):
            return {}, f"{ident[:19]}: {error_of(scan)}"
    unseen = [image_name(i) for i in images if str(i.get("Id")) not in scans]
    if unseen:
        return {}, f"not scanned: {', '.join(unseen[:5])}"
    return scans, None


class ImageRule:
    name: ClassVar[str] = "image_rule"
    params: ClassVar[type[ImageRuleParams]] = ImageRuleParams

    def wants(self, p: ImageRuleParams) -> list[Probe]:
        extra = {"update_layers": [HISTORY], "add_layers": [HISTORY]}
        scans = {"setuid_files": [IMAGE_FILES], "secret_files": [IMAGE_FILES]}
        return [IMAGES, DOCKERD, *extra.get(p.rule, []), *scans.get(p.rule, [])]

    def judge(self, p: ImageRuleParams, obs: Observations) -> Verdict:
        evidence = tuple(dict.fromkeys(probe.key for probe in self.wants(p)))
        expected = TEXT[p.rule]
        images, err = inspected(obs, IMAGES)
        if err:
            return Verdict(Status.ERROR, expected, err, evidence)
        if not images:
            return Verdict(Status.NOT_APPLICABLE, expected, "no local images", evidence)
        history: dict[str, list[str]] = {}
        if p.rule in ("update_layers", "add_layers"):
            history, err = _history(obs)
            if err:
                return Verdict(Status.ERROR, expected, err, evidence)
        scans: dict[str, Mapping[str, Any]] = {}
        skipped: list[str] = []
        if p.rule in ("setuid_files", "secret_files"):
            scans, err = _scans(obs, images)
            if err:
                return Verdict(Status.ERROR, expected, err, evidence)
            skipped = [
                f"{ident[:19]} ({scan['skipped']})"
                for ident, scan in scans.items()
                if scan.get("skipped")
            ]
        bad = [
            f
            for i in images
            if (
                f := _finding(
                    p.rule, i, history.get(str(i.get("Id")), []), scans.get(str(i.get("Id")), {})
                )
            )
        ]
        if bad:
            return Verdict(Status.FAIL, expected, listing(bad, len(images), "images"), evidence)
        if skipped:
            return Verdict(
                Status.NOT_VERIFIABLE, expected, f"not scanned: {'; '.join(skipped)}", evidence
            )
        return Verdict(Status.PASS, expected, f"all {len(images)} local images", evidence)
