"""SPSS and Stata files, read through pyreadstat: their metadata alone, or their rows in chunks.

An SPSS (`.sav`, `.zsav`, `.por`) or Stata (`.dta`) file carries what a CSV export lacks:
value labels (1 = "Strongly agree"), variable labels (the question's wording), SPSS's
measurement level (nominal, ordinal, scale) and user-missing codes (SPSS: values and
ranges; Stata: .a to .z). Rows are read with `user_missing=True`, so a user-missing code
reaches the table as its own code ("9", "a"), which a spec lists in `missing`; a
system-missing cell reads as empty.

Memory stays bounded whatever the file's size: the metadata is read without any row
(`metadataonly=True`), and rows in chunks of about CHUNK_CELLS cells, for the columns
asked for only (`usecols`). Every failure is one FocusgroupError naming the file by its
name (never a folder, which may be a temporary one) and the fix.

    from engine.surveys.statfile import read_metadata
    read_metadata(Path("panel.sav")).column_labels  # ["Respondent", "Age in years", ...]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from engine.errors import FocusgroupError, one_line

# suffix -> (what the file is, the pyreadstat function that reads it)
STAT_FORMATS = {".sav": ("SPSS", "read_sav"), ".zsav": ("SPSS", "read_sav"), ".por": ("SPSS portable", "read_por"),
                ".dta": ("Stata", "read_dta")}
CHUNK_CELLS = 4_000_000  # cells per chunk: 32 MB of float64, whatever the width
MIN_CHUNK_ROWS = 1_000


def stat_format(path: Path | str) -> str | None:
    """"SPSS", "SPSS portable" or "Stata" for a file with one of their suffixes, else None."""
    found = STAT_FORMATS.get(Path(path).suffix.lower())
    return None if found is None else found[0]


def _reader(path: Path):
    """The pyreadstat function for `path`'s format and the options it takes (.por keeps no
    user-missing codes, so its reader has no such option)."""
    import pyreadstat  # only stat files need it

    kind, name = STAT_FORMATS[path.suffix.lower()]
    return kind, getattr(pyreadstat, name), ({} if name == "read_por" else {"user_missing": True})


@contextmanager
def _reading(path: Path, kind: str) -> Iterator[None]:
    """pyreadstat's and the file system's errors as one line naming the file and the fix."""
    import pyreadstat

    try:
        yield
    except FileNotFoundError:
        raise FocusgroupError(f"{path.name} does not exist.") from None
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError, OSError, ValueError, UnicodeError) as error:
        file = f"{'an' if kind.startswith('SPSS') else 'a'} {kind} file"
        raise FocusgroupError(f"{path.name} cannot be read as {file} ({one_line(error, 200)}): it is damaged or "
                              f"not {file}; save or export it again from {kind.split()[0]}.") from None


def read_metadata(path: Path):
    """pyreadstat's metadata of the file (names, labels, value labels, missing codes,
    measurement levels, row count), without reading a row."""
    path = Path(path)
    kind, read, options = _reader(path)
    try:
        empty = path.stat().st_size == 0
    except FileNotFoundError:
        raise FocusgroupError(f"{path.name} does not exist.") from None
    if empty:
        raise FocusgroupError(f"{path.name} is empty (0 bytes); save or export it again from {kind.split()[0]}.")
    with _reading(path, kind):
        _, metadata = read(path, metadataonly=True, **options)
    return metadata


def stat_headers(path: Path) -> list[str]:
    """The variable names of the file, in order."""
    return list(read_metadata(path).column_names)


def read_chunks(path: Path, columns: list[str] | None = None) -> Iterator[tuple[pd.DataFrame, object]]:
    """(rows, metadata) for consecutive chunks of the file's rows, `columns` only (default:
    all). Stata's metadata names the .a-.z codes a chunk holds (`missing_user_values`)."""
    import pyreadstat

    path = Path(path)
    kind, read, options = _reader(path)
    width = len(columns) if columns else read_metadata(path).number_columns
    rows_per_chunk = max(MIN_CHUNK_ROWS, CHUNK_CELLS // max(1, width))
    with _reading(path, kind):
        yield from pyreadstat.read_file_in_chunks(read, path, chunksize=rows_per_chunk, usecols=columns, **options)
