"""Every error casemate raises on purpose. The CLI prints `casemate: error: <message>` and exits."""


class CasemateError(Exception):
    """Base class. The message is one line that says what is wrong and where."""

    exit_code = 2


class BadInputError(CasemateError):
    """The user gave something casemate cannot use (flag, inventory, catalog, waiver file)."""

    exit_code = 2


class CatalogError(BadInputError):
    """A catalog file or entry is invalid."""


class InventoryError(BadInputError):
    """The inventory is missing, malformed, or does not contain what was asked for."""


class EnvironmentProblemError(CasemateError):
    """The controller lacks something casemate needs (dockerd, debootstrap, ansible)."""

    exit_code = 3


class RunFailedError(CasemateError):
    """A run started but could not complete."""

    exit_code = 3


class BusyError(CasemateError):
    """Another run holds what this run needs (the inventory's controller lock): nothing was done,
    nothing failed; run again later (docs/schedule.md)."""

    exit_code = 4


class LabError(CasemateError):
    """The built-in lab could not be built, started, inspected or removed."""

    exit_code = 3


class WaiverError(BadInputError):
    """A waiver file or entry is invalid."""


class EvidenceSignatureError(CasemateError):
    """An evidence bundle's signature is missing, malformed or does not verify."""

    exit_code = 4


class EvidenceTamperedError(CasemateError):
    """An evidence bundle's files differ from its signed manifest (changed, added, removed)."""

    exit_code = 5


class EvidenceKeyError(CasemateError):
    """An evidence bundle is signed, but by another key than the one given."""

    exit_code = 6
