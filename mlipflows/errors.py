"""One exception type per failure class; each message says what the user can do about it."""


def short_reason(error: object, limit: int = 160) -> str:
    """A failure message for a count line: whole when short, else cut at a word with ' …'."""
    text = " ".join(str(error or "unknown reason").split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"


class MlipflowsError(Exception):
    """Base class of every error mlipflows raises on purpose."""


class StructureReadError(MlipflowsError):
    """A structure file could not be read (missing, unreadable, malformed)."""


class PartlyReadError(StructureReadError):
    """Some frames of a multi-structure file could not be used; ``candidates`` holds the rest
    and ``frames`` the reason per unusable frame ("file frame k" → reason)."""

    def __init__(self, message: str, candidates: list, frames: dict[str, str]) -> None:
        super().__init__(message)
        self.candidates = candidates
        self.frames = frames


class UnsupportedElementError(MlipflowsError):
    """A structure holds an element the potential was not trained on."""


class CloseContactError(MlipflowsError):
    """Two atoms are closer than the allowed minimum distance."""


class NonFiniteResultError(MlipflowsError):
    """The potential returned NaN or infinite energies, forces or stresses."""


class ModelLoadError(MlipflowsError):
    """A potential spec could not be resolved or its weights could not be loaded."""


class StoreConfigError(MlipflowsError):
    """The store configuration (mlipflows.yaml / MLIPFLOWS_STORE_URI) is invalid or unreachable."""


class DataNotFoundError(MlipflowsError):
    """A reference data set the command needs is not at the path given."""


class TableMismatchError(MlipflowsError):
    """An earlier benchmark table was made with another model, protocol or code version."""
