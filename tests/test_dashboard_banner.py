"""The Banner page under Streamlit's AppTest with the tiny model: its tables are the engine's
banner, the temperature re-reads logits, the workbook has its sheets, bad input is explained.

    OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q tests/test_dashboard_banner.py
"""

import io
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import streamlit.dataframe_util as dataframe_util
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

import engine.scoring as scoring
from engine.banner import BASE_ROW, TOTAL, BannerConfig, banner

TIMEOUT = 300
DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"
QUESTIONS = ("natspac", "natenvir", "natheal")  # the page's default: the survey's first three
FIELDS = ("age", "partyid")
TOTAL_COLUMNS = [("", TOTAL, "Simulated"), ("", TOTAL, "Real")]


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch):
    monkeypatch.setenv("FOCUSGROUP_MODEL", "tiny")
    from dashboard import resources

    resources.SIMULATIONS.clear()


@pytest.fixture
def downloads(monkeypatch) -> dict[str, bytes]:
    """File name -> the bytes last handed to a download button (AppTest drops its media store)."""
    handed: dict[str, bytes] = {}
    load = MemoryMediaFileStorage.load_and_get_id

    def recording(self, path_or_data, mimetype, kind, filename=None):
        handed[filename] = path_or_data
        return load(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return handed


def banner_page() -> AppTest:
    """The whole app (navigation and all), opened on the Banner page."""
    app = AppTest.from_file(str(DASHBOARD / "app.py"), default_timeout=TIMEOUT)
    app.switch_page("pages/banner.py").run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Banner"
    return app


def build(app: AppTest) -> AppTest:
    app.button(key="banner_build").click().run()
    assert not app.exception, app.exception
    return app


def shown_text(app: AppTest, index: int):
    """What a table shows (numbers formatted, marks appended), beside `app.dataframe[i].value`'s numbers."""
    return dataframe_util.convert_arrow_bytes_to_pandas_df(app.dataframe[index].proto.arrow_data.styler.display_values)


def engine_totals(result, question_id: str) -> np.ndarray:
    """[rows, 2] simulated and real of the Total column, base row first, as the engine has them."""
    cells = result.cells[(result.cells["question"] == question_id) & (result.cells["field"] == "")]
    base = [cells["n_personas"].iloc[0], cells["n_real"].iloc[0]]
    return np.vstack([base, cells[["simulated", "real"]].to_numpy(dtype=float)])


def test_banner_tables_are_the_engine_banner_and_temperature_rereads_logits(monkeypatch, gss):
    app = banner_page()
    assert app.multiselect(key="banner_questions_gss2018").value == list(QUESTIONS)
    assert app.multiselect(key="banner_fields_gss2018").value == list(FIELDS)
    build(app)
    assert [header.value for header in app.subheader] == list(QUESTIONS)

    from dashboard import resources

    expected = banner(resources.model(resources.base_model(), None), gss, BannerConfig(QUESTIONS, FIELDS))
    marks = 0
    for index, question_id in enumerate(QUESTIONS):
        table = app.dataframe[index].value
        assert table.index[0] == BASE_ROW
        assert np.allclose(table[TOTAL_COLUMNS].to_numpy(dtype=float), engine_totals(expected, question_id))
        # Every mark the engine sets is shown after its number, and no other.
        text = shown_text(app, index)
        cells = expected.cells[(expected.cells["question"] == question_id) & (expected.cells["field"] != "")]
        for record in cells.itertuples():
            label = gss.field(record.field).label
            for side, flag in (("Simulated", record.simulated_flag), ("Real", record.real_flag)):
                shown = text.loc[record.row, (label, record.value, side)]
                assert shown.endswith(f" {flag}") if flag else shown[-1] not in "▲▼", (record, side, shown)
                marks += bool(flag)
    assert marks  # the check above compared some marks, not only blanks
    assert any("Simulated by a language model" in caption.value and "two-proportion z-test" in caption.value
               for caption in app.caption)

    def forbidden(*args, **kwargs):
        raise AssertionError("the model ran for a temperature change")

    monkeypatch.setattr(scoring, "score_personas", forbidden)
    before = app.dataframe[0].value[TOTAL_COLUMNS].to_numpy(dtype=float)
    app.slider(key="banner_temperature").set_value(0.3).run()
    assert not app.exception, app.exception
    after = app.dataframe[0].value[TOTAL_COLUMNS].to_numpy(dtype=float)
    assert not np.allclose(before[1:, 0], after[1:, 0])  # the simulated shares moved
    assert np.allclose(before[:, 1], after[:, 1], equal_nan=True)  # the real ones did not
    assert np.allclose(after, engine_totals(expected.at(0.3), QUESTIONS[0]))


def test_a_banner_on_a_base_exports_its_workbook_and_outlives_a_page_switch(monkeypatch, downloads):
    app = banner_page()
    app.multiselect(key="banner_fields_gss2018").set_value(["sex", "degree"])
    app.multiselect(key="banner_base_gss2018_partyid").set_value(["Strong Democrat"]).run()
    assert "Party: Strong Democrat: **379** real respondents" in app.markdown[0].value
    build(app)
    assert app.dataframe[0].value.loc[BASE_ROW, ("", TOTAL, "Simulated")] == 379

    button = app.get("download_button")[0]
    assert button.label == "Excel (XLSX)"
    workbook = openpyxl.load_workbook(io.BytesIO(downloads["focusgroup_banner_gss2018.xlsx"]))
    assert workbook.sheetnames == [*QUESTIONS, "Notes"]
    notes = {row[0].value: row[1].value for row in workbook["Notes"].iter_rows()}
    assert notes["Base"] == "partyid = Strong Democrat" and notes["Columns"] == "sex, degree"

    def forbidden(*args, **kwargs):
        raise AssertionError("the model ran again after a page switch")

    monkeypatch.setattr(scoring, "score_personas", forbidden)
    app.switch_page("pages/data.py").run()
    assert not app.exception, app.exception
    app.switch_page("pages/banner.py").run()
    assert not app.exception, app.exception
    assert [header.value for header in app.subheader] == list(QUESTIONS)
    assert app.dataframe[0].value.loc[BASE_ROW, ("", TOTAL, "Simulated")] == 379
    assert app.multiselect(key="banner_base_gss2018_partyid").value == ["Strong Democrat"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("banner_fields_gss2018", [], "at least one demographic field"),
    ("banner_questions_gss2018", [], "at least one question"),
])
def test_a_banner_without_questions_or_fields_is_explained_not_built(key, value, message):
    app = AppTest.from_file(str(DASHBOARD / "pages" / "banner.py"), default_timeout=TIMEOUT).run()
    app.multiselect(key=key).set_value(value).run()
    assert not app.exception, app.exception
    assert [info.value for info in app.info if message in info.value]
    assert "banner_build" not in [button.key for button in app.button]


def test_an_empty_base_is_explained_not_built():
    app = AppTest.from_file(str(DASHBOARD / "pages" / "banner.py"), default_timeout=TIMEOUT).run()
    app.multiselect(key="banner_base_gss2018_age").set_value(["18-29"])
    app.multiselect(key="banner_base_gss2018_work").set_value(["Retired"]).run()
    assert not app.exception, app.exception
    assert "**0** real respondents" in app.markdown[0].value
    assert any("No respondent" in info.value for info in app.info)
    assert "banner_build" not in [button.key for button in app.button]
