"""The Data page's column mapper, under AppTest with real files (SPSS written by pyreadstat,
CSV), and the engine functions it stands on: a mapping becomes a spec, and an upload is
kept with it in the user survey folder (redirected here to tmp_path) or not at all."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
from streamlit.testing.v1 import AppTest

from engine.errors import FocusgroupError
from engine.surveys import list_surveys, load_survey
from engine.surveys.importing import ColumnChoice, Mapping, propose_mapping, propose_spec, spec_from_mapping
from engine.surveys.profile import profile_export
from engine.surveys.spec import survey_from_spec
from engine.surveys.vocabulary import is_respondent_id

TIMEOUT = 120
DASHBOARD = Path(__file__).resolve().parents[1] / "dashboard"
ROWS = 12
# The panel's columns, in file order: the positions the mapper's table rows are keyed by
ID, AGE, SEX, AGREE, PARTY, WEIGHT = range(6)


@pytest.fixture(autouse=True)
def user_surveys(monkeypatch, tmp_path):
    """A tiny model, and user surveys kept in tmp_path, listed afresh by the dashboard."""
    import engine.surveys.registry as registry
    from dashboard import resources

    monkeypatch.setenv("FOCUSGROUP_MODEL", "tiny")
    monkeypatch.setattr(registry, "user_survey_dir", lambda: tmp_path / "surveys")
    resources.survey_catalog.clear()
    resources.survey.clear()
    resources.SIMULATIONS.clear()
    yield tmp_path / "surveys"
    resources.survey_catalog.clear()
    resources.survey.clear()


def write_panel(folder: Path, weights=None, name: str = "panel.sav") -> Path:
    """An SPSS panel: labelled sex, an ordinal agreement scale with a user-missing code, a
    nominal party question, and a design weight."""
    frame = pd.DataFrame({
        "id": np.arange(101, 101 + ROWS, dtype=float),
        "age": np.tile([23.0, 37.0, 51.0, 68.0], ROWS // 4),
        "sex": np.tile([1.0, 2.0], ROWS // 2),
        "q_agree": np.tile([1.0, 2.0, 3.0, 4.0, 5.0, 9.0], ROWS // 6),
        "q_party": np.tile([1.0, 2.0, 3.0], ROWS // 3),
        "wt": np.tile([0.5, 1.5], ROWS // 2) if weights is None else np.asarray(weights, dtype=float),
    })
    pyreadstat.write_sav(
        frame, folder / name, file_label="Brand panel, May",
        column_labels={"id": "Respondent", "age": "Age in years", "sex": "Respondent sex",
                       "q_agree": "The brand is good value for money",
                       "q_party": "Which party do you feel closest to?", "wt": "Design weight"},
        variable_value_labels={"sex": {1: "Male", 2: "Female"},
                               "q_agree": {1: "Strongly agree", 2: "Agree", 3: "Neither", 4: "Disagree",
                                           5: "Strongly disagree", 9: "Refused"},
                               "q_party": {1: "Labour", 2: "Conservative", 3: "Other"}},
        missing_ranges={"q_agree": [9]},
        variable_measure={"age": "scale", "sex": "nominal", "q_agree": "ordinal", "q_party": "nominal"},
    )
    return folder / name


def data_page() -> AppTest:
    app = AppTest.from_file(str(DASHBOARD / "pages" / "data.py"), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception, app.exception
    return app


def upload(app: AppTest, path: Path) -> AppTest:
    app.file_uploader(key="mapper_file").set_value((path.name, path.read_bytes(), "application/octet-stream"))
    app.run()
    assert not app.exception, app.exception
    return app


def edit_and_save(app: AppTest, edits: dict[int, dict]) -> AppTest:
    """Edit the mapper's table as a user would (AppTest takes a data editor's edits through
    session state), then press Save survey."""
    app.session_state["mapper_columns"] = {"edited_rows": edits, "added_rows": [], "deleted_rows": []}
    app.button(key="mapper_save").click()
    app.run()
    assert not app.exception, app.exception
    return app


# -- the page ------------------------------------------------------------------------------

def test_a_mapped_spss_upload_is_saved_shown_listed_and_picked(tmp_path, user_surveys):
    app = upload(data_page(), write_panel(tmp_path))
    table = app.data_editor(key="mapper_columns").value
    assert list(table["role"]) == ["id", "demographic", "demographic", "question", "question", "weight"]
    assert table["type"][AGREE] == "ordinal" and table["type"][PARTY] == "nominal"
    assert "Male (1): 6" in table["top_values"][SEX] and app.text_input(key="mapper_id").value == "panel"

    app.text_input(key="mapper_id").set_value("brand-panel")
    edit_and_save(app, {PARTY: {"role": "demographic"}, AGREE: {"type": "numeric", "positive": "last"}})
    assert not app.error, [error.value for error in app.error]
    assert "Saved 'brand-panel': 12 respondents, 1 question, 3 demographic fields" in app.success[0].value

    survey = load_survey("brand-panel")
    assert [field.name for field in survey.fields] == ["age", "gender", "q_party"]
    assert survey.field("q_party").values == ("Labour", "Conservative", "Other")
    question = survey.question("q_agree")
    assert [q.id for q in survey.questions] == ["q_agree"] and question.type == "numeric"
    assert question.positive == "last" and survey.weights.tolist()[:2] == [0.5, 1.5]
    assert "brand-panel" in [entry.id for entry in list_surveys()]
    spec = (user_surveys / "brand-panel" / "brand-panel.toml").read_text()
    assert app.code[0].value == spec.rstrip("\n") and 'file = "panel.sav"' in spec
    assert sorted(path.name for path in (user_surveys / "brand-panel").iterdir()) == ["brand-panel.toml", "panel.sav"]
    download = app.get("download_button")[0]
    assert download.label == "Download the spec"
    # The sidebar lists the new survey at once, and has picked it
    menu = app.selectbox(key="survey_id")
    assert "brand-panel" in menu.options[-1] and menu.value == "brand-panel"
    assert app.caption[0].value.startswith("**Brand panel, May**: 12 respondents")

    # Another file: its own guesses, none of the last file's edits, no notice of the last save
    other = tmp_path / "tracker.csv"
    other.write_text("Respondent ID,Gender,Do you like it?\nR1,Female,Yes\nR2,Male,No\n")
    upload(app, other)
    assert app.text_input(key="mapper_id").value == "tracker" and not app.success and not app.code
    assert list(app.data_editor(key="mapper_columns").value["role"]) == ["id", "demographic", "question"]


@pytest.mark.parametrize("kind,place", [("sav", "case 3 of panel.sav (respondent '103')"),
                                        ("csv", "row 4 of panel.csv (respondent 'R3')")])
def test_a_bad_weight_column_is_an_error_naming_the_file_and_row_and_nothing_is_written(tmp_path, user_surveys,
                                                                                        kind, place):
    if kind == "sav":
        path = write_panel(tmp_path, weights=[1.0, 1.0, -1.0] + [1.0] * (ROWS - 3))
        weight = WEIGHT
    else:
        path = tmp_path / "panel.csv"
        path.write_text("Respondent ID,Gender,Do you like it?,Weight\nR1,Female,Yes,1\nR2,Male,No,1.5\n"
                        "R3,Male,Yes,heavy\nR4,Female,No,1\n")
        weight = 3
    app = upload(data_page(), path)
    assert app.data_editor(key="mapper_columns").value["role"][weight] != "weight"  # the guess left it out
    edit_and_save(app, {weight: {"role": "weight"}})
    assert not app.success and len(app.error) == 1
    message = app.error[0].value
    assert message.startswith("The survey was not saved: ") and "[data] `weight`" in message and place in message
    assert str(tmp_path) not in message and ".staging" not in message and "Traceback" not in message
    assert list(user_surveys.iterdir()) == []
    assert "panel" not in [entry.id for entry in list_surveys()]


def test_a_damaged_file_is_an_error_naming_it(tmp_path, user_surveys):
    path = tmp_path / "broken.sav"
    path.write_bytes(b"not an SPSS file at all")
    app = upload(data_page(), path)
    assert "broken.sav cannot be read as an SPSS file" in app.error[0].value
    assert str(tmp_path) not in app.error[0].value and "mapper_columns" not in app.session_state


def test_a_role_no_column_can_take_is_refused_by_name(tmp_path, user_surveys):
    app = upload(data_page(), write_panel(tmp_path))
    edit_and_save(app, {SEX: {"role": "weight"}})
    assert "column wt 'Design weight' cannot be the weight: sex 'Respondent sex' is already the weight" in \
        app.error[0].value
    assert list(user_surveys.iterdir()) == []


def test_the_csv_and_spec_upload_still_adds_a_survey(tmp_path, user_surveys):
    app = data_page()
    csv = b"ID,Gender,How much do you like it?\n1,Female,A lot\n2,Male,Somewhat\n"
    spec = (b'id = "mine"\n[data]\nrespondent_id = "ID"\n[[fields]]\nname = "gender"\ncolumn = "Gender"\n'
            b'options = ["Female", "Male"]\n[[questions]]\nid = "likes"\ncolumn = "How much do you like it?"\n'
            b'text = "How much do you like it?"\ntype = "ordinal"\noptions = ["A lot", "Somewhat"]\n')
    app.file_uploader(key="upload_csv").set_value(("export.csv", csv, "text/csv"))
    app.file_uploader(key="upload_spec").set_value(("mine.toml", spec.replace(b'"Gender"', b'"Sex"'), "text/plain"))
    app.run()
    app.button[0].click().run()
    assert "The survey was not added" in app.error[0].value and "no column named 'Sex'" in app.error[0].value
    assert app.file_uploader(key="mapper_file")  # the mapper's tab still draws
    app.file_uploader(key="upload_spec").set_value(("mine.toml", spec, "text/plain"))
    app.run()
    app.button[0].click().run()
    assert not app.exception, app.exception
    assert "Added 'mine': 2 respondents" in app.success[0].value
    assert load_survey("mine").answers["likes"].tolist() == [0, 1]


def test_a_saved_survey_simulates_on_the_focus_group_page_without_a_reload(tmp_path, user_surveys):
    app = AppTest.from_file(str(DASHBOARD / "app.py"), default_timeout=TIMEOUT)
    app.run()
    app.switch_page("pages/data.py").run()
    upload(app, write_panel(tmp_path))
    edit_and_save(app, {})
    app.switch_page("pages/focus_group.py").run()
    assert not app.exception, app.exception
    assert app.selectbox(key="survey_id").value == "panel"
    app.button(key="simulate").click().run()
    assert not app.exception, app.exception
    assert app.get("plotly_chart"), "no chart after simulating the saved survey"


# -- the engine: a mapping becomes a spec --------------------------------------------------

def test_the_proposed_mapping_makes_the_survey_import_proposes(tmp_path):
    path = write_panel(tmp_path)
    profile = profile_export(path, is_respondent_id)
    proposed = propose_spec(path, tmp_path / "proposed.toml")
    (tmp_path / "proposed.toml").write_text(proposed.text)
    (tmp_path / "mapped.toml").write_text(spec_from_mapping(profile, propose_mapping(profile)))
    mapped, imported = (survey_from_spec(tmp_path / name, None) for name in ("mapped.toml", "proposed.toml"))
    assert mapped.questions == imported.questions and mapped.fields == imported.fields
    assert mapped.answers.equals(imported.answers) and mapped.weights.equals(imported.weights)


def test_a_mapping_sets_each_role_type_and_positive_end(tmp_path):
    profile = profile_export(write_panel(tmp_path), is_respondent_id)
    mapping = Mapping("mine", "Mine", {ID: ColumnChoice("id"), SEX: ColumnChoice("demographic"),
                                       AGREE: ColumnChoice("question", "ordinal", "last"),
                                       PARTY: ColumnChoice("question", "ordinal")})
    (tmp_path / "mine.toml").write_text(spec_from_mapping(profile, mapping))
    survey = survey_from_spec(tmp_path / "mine.toml", None)
    assert [field.name for field in survey.fields] == ["gender"] and survey.weights is None
    assert [(q.id, q.type, q.positive) for q in survey.questions] == [("q_agree", "ordinal", "last"),
                                                                     ("q_party", "ordinal", "first")]
    assert survey.title == "Mine" and list(survey.answers.index[:2]) == ["101", "102"]


@pytest.mark.parametrize("choices,fragment", [
    ({ID: ColumnChoice("id"), AGE: ColumnChoice("id")},
     "panel.sav: column age 'Age in years' cannot be the respondent id: id 'Respondent' is already the respondent id"),
    ({PARTY: ColumnChoice("question")}, "panel.sav has no column named or labelled like a demographic"),
    ({AGREE: ColumnChoice("skip")}, "panel.sav has no column usable as a question"),
])
def test_a_mapping_no_spec_can_follow_is_refused_by_name(tmp_path, choices, fragment):
    profile = profile_export(write_panel(tmp_path), is_respondent_id)
    mapping = Mapping("mine", "", {AGREE: ColumnChoice("question"), PARTY: ColumnChoice("demographic"), **choices})
    with pytest.raises(FocusgroupError) as error:
        spec_from_mapping(profile, mapping)
    assert fragment in str(error.value)


def test_a_numeric_question_needs_numbers_for_codes(tmp_path):
    path = tmp_path / "answers.csv"
    path.write_text("Gender,Do you like it?\nFemale,Yes\nMale,No\nMale,Yes\n")
    profile = profile_export(path, is_respondent_id)
    mapping = Mapping("mine", "", {0: ColumnChoice("demographic"), 1: ColumnChoice("question", "numeric")})
    with pytest.raises(FocusgroupError) as error:
        spec_from_mapping(profile, mapping)
    assert str(error.value).startswith("answers.csv: column Do you like it? cannot be a question: a numeric question "
                                       "needs numbers for codes, and its answers (Yes, No) are not")
    mapping.columns[1] = ColumnChoice("question", "ordinal", "last")
    assert 'positive = "last"' in spec_from_mapping(profile, mapping)


def test_a_choice_outside_the_menus_is_refused():
    with pytest.raises(FocusgroupError, match="role must be one of demographic, question, id, weight, skip"):
        ColumnChoice("boss")
    with pytest.raises(FocusgroupError, match="`id` must be"):
        Mapping("../elsewhere", "x")


# -- the engine: an upload is kept with its mapped spec, or not at all ---------------------

@pytest.mark.parametrize("name", ["../panel.sav", "panel.toml", "", ".hidden.sav", "a/b.sav", "panel.sav\n"])
def test_a_hostile_file_name_is_refused_and_nothing_is_written(tmp_path, user_surveys, name):
    from engine.surveys.registry import add_mapped_survey, profile_upload

    data = write_panel(tmp_path).read_bytes()
    for call in (lambda: profile_upload(data, name), lambda: add_mapped_survey(data, name, Mapping("mine", ""))):
        with pytest.raises(FocusgroupError, match="is not a plain CSV, SPSS or Stata file name"):
            call()
    assert not user_surveys.exists() or list(user_surveys.iterdir()) == []


def test_a_mapped_upload_replaces_its_survey_whole_and_loads_anew(tmp_path, user_surveys):
    from engine.surveys.registry import add_mapped_survey, profile_upload

    data = write_panel(tmp_path).read_bytes()
    mapping = propose_mapping(profile_upload(data, "panel.sav"))
    first, _ = add_mapped_survey(data, "panel.sav", mapping)
    assert load_survey("panel").question("q_party").type == "nominal"
    mapping.columns[PARTY] = ColumnChoice("question", "ordinal", "last")
    add_mapped_survey(data, "panel export (2).sav", mapping)
    assert load_survey("panel").question("q_party").positive == "last"
    assert sorted(path.name for path in (user_surveys / "panel").iterdir()) == ["panel export (2).sav", "panel.toml"]
    assert first.question("q_party").type == "nominal"
