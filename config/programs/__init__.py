"""Loading of the versioned program definitions kept in this folder."""

from __future__ import annotations

import tomllib
from pathlib import Path

from workflows.errors import ProgramDefinitionError
from workflows.program import Program, build_program, parse_program_version

#: The folder holding the shipped program definitions.
PROGRAMS_DIR = Path(__file__).resolve().parent


def load_program(directory: str | Path = PROGRAMS_DIR, name: str = "lenalidomide") -> Program:
    """Load and validate every ``<name>-*.toml`` version in ``directory``.

    Raises ``ProgramDefinitionError`` naming the file and every problem when
    a file cannot be parsed or is incomplete, so the service refuses to start.
    """
    directory = Path(directory)
    files = sorted(directory.glob(f"{name}-*.toml"))
    if not files:
        raise ProgramDefinitionError(str(directory), [f"no {name}-*.toml program definition found"])
    versions = []
    for path in files:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ProgramDefinitionError(path.name, [f"not valid TOML: {exc}"]) from None
        versions.append(parse_program_version(data, source=path.name))
    return build_program(versions)
