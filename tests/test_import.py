"""`focusgroup import`: SPSS, Stata, Qualtrics and SurveyMonkey files, built here, become specs
that load from the original file with the file's own labels, scale types, weight and
missing codes, and simulate; every bad input is one clear error."""

import json
import tomllib

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from engine.cli import main
from engine.errors import FocusgroupError
from engine.metrics import answer_distribution
from engine.simulate import simulate
from engine.surveys import load_survey
from engine.surveys.importing import import_survey, propose_spec
from engine.surveys.spec import read_spec, survey_from_spec

AGREE = {1: "Strongly agree", 2: "Agree", 3: "Neither agree nor disagree", 4: "Disagree", 5: "Strongly disagree",
         9: "Refused"}
ROWS = 40


def write_sav(folder, name="panel.sav"):
    """An SPSS file as a researcher has it: labelled codes, measurement levels, user-missing
    codes (a value and a range), a weight, free text and a timestamp."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "id": np.arange(101, 101 + ROWS, dtype=float),
        "age": rng.integers(18, 85, ROWS).astype(float),
        "sex": np.tile([1.0, 2.0], ROWS // 2),
        "q_agree": np.tile([1.0, 2.0, 3.0, 4.0, 5.0, 9.0, 2.0, 1.0], ROWS // 8),
        "q_party": np.tile([1.0, 2.0, 98.0, 3.0], ROWS // 4),
        "wt": np.tile([0.5, 1.5, 1.25, 0.75], ROWS // 4),
        "comment": [f"remark number {index}" for index in range(ROWS)],
        "started": pd.Timestamp("2024-05-01") + pd.to_timedelta(np.arange(ROWS) * 3600, unit="s"),
    })
    pyreadstat.write_sav(
        frame, folder / name, file_label="Brand panel, May",
        column_labels={"id": "Respondent", "age": "Age in years", "sex": "Respondent sex",
                       "q_agree": "The brand is good value for money", "q_party": "Which party do you feel closest to?",
                       "wt": "Design weight", "comment": "Anything else?", "started": "Start time"},
        variable_value_labels={"sex": {1: "Male", 2: "Female"}, "q_agree": AGREE,
                               "q_party": {1: "Labour", 2: "Conservative", 3: "Other", 98: "Don't know"}},
        missing_ranges={"q_agree": [9], "q_party": [{"lo": 97, "hi": 99}]},
        variable_measure={"age": "scale", "sex": "nominal", "q_agree": "ordinal", "q_party": "nominal"},
    )
    return folder / name


def write_dta(folder):
    """A Stata file: value labels, no measurement levels, the extended missing code .a."""
    frame = pd.DataFrame({
        "caseid": np.arange(1, 13),
        "gender": np.tile([1, 2], 6),
        "educ": np.tile([1, 2, 3], 4),
        "trust": pd.Series([1, 2, "a", 4, 3, 1] * 2, dtype=object),
        "rating": np.tile([1, 5, 3, 4, 2, 5], 2),
    })
    pyreadstat.write_dta(
        frame, folder / "study.dta",
        column_labels={"caseid": "Case ID", "gender": "Gender", "educ": "Highest degree",
                       "trust": "How much do you trust the news?", "rating": "Rate the product from 1 to 5"},
        variable_value_labels={"gender": {1: "Man", 2: "Woman"},
                               "educ": {1: "High school", 2: "Bachelor's degree", 3: "Graduate degree"},
                               "trust": {1: "A great deal", 2: "Some", 3: "Not much", 4: "Not at all"}},
        missing_user_values={"trust": ["a"]},
    )
    return folder / "study.dta"


QUALTRICS_IDS = ["startDate", "endDate", "status", "ipAddress", "_recordId", "QID1", "QID2", "QID3_1", "QID3_2",
                 "QID4_TEXT"]
QUALTRICS = "\n".join([
    "StartDate,EndDate,Status,IPAddress,ResponseId,Q1,Q2,Q3_1,Q3_2,Q4_TEXT",
    "Start Date,End Date,Response Type,IP Address,Response ID,What is your gender?,How old are you?,"
    "How satisfied are you with - Price,How satisfied are you with - Quality,Anything else?",
    ",".join('"' + json.dumps({"ImportId": import_id}).replace('"', '""') + '"' for import_id in QUALTRICS_IDS),
    "2024-05-01 10:00:00,2024-05-01 10:05:00,IP Address,10.0.0.1,R_1a,Female,18-29,Very satisfied,"
    "Somewhat dissatisfied,Great",
    "2024-05-01 11:00:00,2024-05-01 11:04:00,IP Address,10.0.0.2,R_2b,Male,30-44,Somewhat satisfied,"
    "Very satisfied,",
    "2024-05-02 09:00:00,2024-05-02 09:03:00,IP Address,10.0.0.3,R_3c,Female,45-60,Very dissatisfied,"
    "Somewhat satisfied,Too pricey",
    "2024-05-02 12:00:00,2024-05-02 12:06:00,IP Address,10.0.0.4,R_4d,Male,> 60,Somewhat satisfied,"
    "Very satisfied,",
]) + "\n"
SURVEYMONKEY = """\
Respondent ID,Collector ID,Start Date,End Date,IP Address,Do you eat steak?,Which fruits do you like?,,\
How do you like your steak?,Gender,Age,Comments
,,,,,Response,Apple,Banana,Response,Response,Response,Open-Ended Response
1001,55,05/01/2024 10:00:00 AM,05/01/2024 10:05:00 AM,10.0.0.1,Yes,Apple,,Rare,Male,18-29,nice
1002,55,05/01/2024 11:00:00 AM,05/01/2024 11:05:00 AM,10.0.0.2,No,,Banana,,Female,30-44,
1003,55,05/02/2024 10:00:00 AM,05/02/2024 10:05:00 AM,10.0.0.3,Yes,Apple,Banana,Medium,Female,> 60,ok
1004,55,05/02/2024 12:00:00 AM,05/02/2024 12:05:00 AM,10.0.0.4,Yes,,,Well,Male,45-60,
"""


def run_import(capsys, *argv):
    status = main(["import", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def spec_table(path):
    return tomllib.loads(path.read_text(encoding="utf-8"))


# -- formats ------------------------------------------------------------------------------

def test_an_spss_file_imports_with_its_labels_scale_types_weight_and_missing_codes(tmp_path, capsys):
    sav = write_sav(tmp_path)
    status, out, err = run_import(capsys, sav, "--out", tmp_path / "panel.toml", "--data-dir", tmp_path)
    assert status == 0, err
    for guess in ("respondent id: id", "weight: wt", "field age: age 'Age in years'", "field gender: sex",
                  "question q_agree: q_agree 'The brand is good value for money': ordinal (SPSS measurement "
                  "level ordinal", "question q_party", "missing 9", "missing 97, 98, 99",
                  "skipped comment 'Anything else?': free text", "skipped started 'Start time': a date or time"):
        assert guess in out
    spec = spec_table(tmp_path / "panel.toml")
    assert spec["data"] == {"file": "panel.sav", "respondent_id": "id", "weight": "wt"}
    agree = next(question for question in spec["questions"] if question["id"] == "q_agree")
    assert agree["options"][0] == {"code": "1", "label": "Strongly agree"} and agree["missing"] == ["9"]

    survey = load_survey(str(tmp_path / "panel.toml"), tmp_path)
    assert survey.title == "Brand panel, May" and survey.n_respondents == ROWS
    assert [field.name for field in survey.fields] == ["age", "gender"]
    assert survey.field("gender").values == ("Male", "Female")
    assert survey.field("age").values == ("18-29", "30-44", "45-59", "60+")
    agree = survey.question("q_agree")
    assert (agree.type, agree.labels, agree.positive) == ("ordinal", list(AGREE.values())[:5], "first")
    assert survey.answer_codes("q_agree")[:8].tolist() == [0, 1, 2, 3, 4, -1, 1, 0]
    party = survey.question("q_party")
    assert party.type == "nominal" and party.labels == ["Labour", "Conservative", "Other"]
    assert (survey.answer_codes("q_party") == -1).sum() == ROWS // 4  # "Don't know", in the missing range
    assert survey.weights.tolist()[:4] == [0.5, 1.5, 1.25, 0.75]
    assert survey.demographics.index[0] == "101"
    assert {question.id for question in survey.questions} == {"q_agree", "q_party"}


def test_a_stata_file_imports_with_its_labels_and_extended_missing_code(tmp_path):
    proposal = import_survey(write_dta(tmp_path))
    assert proposal.spec_path == tmp_path / "study.toml"
    report = "\n".join(proposal.report)
    assert "respondent id: caseid" in report and "field education: educ 'Highest degree'" in report
    spec = read_spec(tmp_path / "study.toml", None)
    assert spec.data.file == "study.dta" and spec.data.respondent_id == "caseid"
    survey = survey_from_spec(tmp_path / "study.toml", None)
    trust = survey.question("trust")
    assert trust.type == "ordinal" and trust.labels == ["A great deal", "Some", "Not much", "Not at all"]
    assert survey.answer_codes("trust")[:3].tolist() == [0, 1, -1]  # .a is missing
    rating = survey.question("rating")
    assert rating.type == "numeric" and rating.values.tolist() == [1, 2, 3, 4, 5] and rating.positive == "last"
    assert survey.field("education").values == ("High school", "Bachelor's degree", "Graduate degree")


def test_a_qualtrics_csv_imports_skipping_its_metadata(tmp_path, capsys):
    (tmp_path / "brand.csv").write_text(QUALTRICS)
    status, out, err = run_import(capsys, tmp_path / "brand.csv", "--id", "brand")
    assert status == 0, err
    assert "Qualtrics CSV, 4 respondents" in out and "respondent id: ResponseId" in out
    for skipped in ("StartDate", "EndDate", "Status", "IPAddress"):
        assert f"skipped {skipped} " in out and "Qualtrics response metadata" in out
    assert "skipped Q4_TEXT 'Anything else?': free text" in out
    spec = spec_table(tmp_path / "brand.toml")
    assert spec["id"] == "brand" and spec["data"]["header_rows"] == 3
    survey = load_survey(str(tmp_path / "brand.toml"))
    assert survey.field("gender").values == ("Female", "Male")
    assert survey.field("age").values == ("18-29", "30-44", "45-60", "> 60")
    price = survey.question("Q3_1")
    assert price.text == "How satisfied are you with - Price" and price.type == "ordinal"
    assert price.labels == ["Very satisfied", "Somewhat satisfied", "Very dissatisfied"]
    assert survey.answer_codes("Q3_2").tolist() == [2, 0, 1, 0]  # "Somewhat dissatisfied" comes third


def test_a_surveymonkey_csv_imports_with_its_second_header_row(tmp_path):
    (tmp_path / "steak.csv").write_text(SURVEYMONKEY)
    proposal = propose_spec(tmp_path / "steak.csv", tmp_path / "steak.toml")
    report = "\n".join(proposal.report)
    assert "SurveyMonkey CSV, 4 respondents" in report
    assert "skipped IP Address: an IP address" in report and "skipped Start Date: a timestamp" in report
    assert "skipped Comments: free text (a SurveyMonkey open-ended response)" in report
    assert "skipped column 7 'Which fruits do you like? - Banana': a single answer" in report
    (tmp_path / "steak.toml").write_text(proposal.text)
    survey = load_survey(str(tmp_path / "steak.toml"))
    assert [question.id for question in survey.questions] == ["do_you_eat_steak", "how_do_you_like_your_steak"]
    assert survey.question("do_you_eat_steak").labels == ["Yes", "No"]
    assert survey.answer_codes("how_do_you_like_your_steak").tolist() == [1, -1, 0, 2]
    assert survey.demographics.index.tolist() == ["1001", "1002", "1003", "1004"]


def test_a_spec_in_the_data_directory_reads_the_file_below_it(tmp_path):
    (tmp_path / "exports").mkdir()
    write_sav(tmp_path / "exports")
    (tmp_path / "specs").mkdir()
    import_survey(tmp_path / "exports" / "panel.sav", tmp_path / "specs" / "panel.toml", data_dir=tmp_path)
    assert spec_table(tmp_path / "specs" / "panel.toml")["data"]["file"] == "exports/panel.sav"
    assert load_survey(str(tmp_path / "specs" / "panel.toml"), tmp_path).n_respondents == ROWS


def test_an_imported_survey_simulates(tiny, tmp_path):
    import_survey(write_sav(tmp_path))
    survey = survey_from_spec(tmp_path / "panel.toml", None)
    women = simulate(tiny, survey, "q_agree", {"gender": ("Female",)}, with_baselines=False)
    assert women.n_personas == ROWS // 2
    assert women.at(1.0).simulated.sum() == pytest.approx(1.0)
    answers = survey.answers.loc[women.index, "q_agree"].to_numpy()
    np.testing.assert_allclose(women.real, answer_distribution(answers, 5, survey.weights.loc[women.index].to_numpy()))


# -- the loader's side of a stat file -----------------------------------------------------

def test_a_stat_file_spec_refuses_csv_keys_and_takes_column_numbers(tmp_path):
    import_survey(write_sav(tmp_path))
    text = (tmp_path / "panel.toml").read_text()
    (tmp_path / "panel.toml").write_text(text.replace('file = "panel.sav"', 'file = "panel.sav"\nheader_rows = 2'))
    with pytest.raises(FocusgroupError, match=r"panel\.toml: \[data\] `header_rows` is for CSV files"):
        survey_from_spec(tmp_path / "panel.toml", None)
    (tmp_path / "panel.toml").write_text(text.replace('column = "sex"', "column = 2"))
    assert survey_from_spec(tmp_path / "panel.toml", None).field("gender").values == ("Male", "Female")
    (tmp_path / "panel.toml").write_text(text.replace('column = "sex"', 'column = "Sex"'))
    with pytest.raises(FocusgroupError, match="no column named 'Sex' in the data; did you mean 'sex'"):
        survey_from_spec(tmp_path / "panel.toml", None)


def test_a_value_of_one_row_names_the_row_and_the_respondent(tmp_path):
    import_survey(write_sav(tmp_path))
    text = (tmp_path / "panel.toml").read_text()
    (tmp_path / "panel.toml").write_text(text.replace('missing = ["9"]\n', ""))
    with pytest.raises(FocusgroupError, match=r"question 'q_agree': values '9' are neither options nor missing "
                                              r"codes; the first is in case 6 of panel\.sav \(respondent '106'\)"):
        survey_from_spec(tmp_path / "panel.toml", None)


def test_a_damaged_data_file_is_named_when_the_spec_loads(tmp_path):
    import_survey(write_sav(tmp_path))
    (tmp_path / "panel.sav").write_bytes((tmp_path / "panel.sav").read_bytes()[:700])
    with pytest.raises(FocusgroupError, match=r"panel\.toml: \[data\] `file`: panel\.sav cannot be read as an SPSS "
                                              "file"):
        survey_from_spec(tmp_path / "panel.toml", None)


# -- bad input: one clear line each ----------------------------------------------------------

BROKEN = {
    "corrupt SPSS bytes": ("broken.sav", b"$FL2 this is not what SPSS writes" * 20,
                           "broken.sav cannot be read as an SPSS file"),
    "an empty SPSS file": ("empty.sav", b"", "empty.sav is empty (0 bytes)"),
    "an empty CSV": ("empty.csv", b"", "empty.csv is empty"),
    "a Qualtrics CSV with one header row": ("qualtrics.csv", "\n".join(QUALTRICS.splitlines()[:1] +
                                                                       QUALTRICS.splitlines()[3:]).encode(),
                                            "looks like a Qualtrics export (it has the columns EndDate, IPAddress, "
                                            "ResponseId, StartDate, Status) but lacks its three header rows"),
    "an unknown extension": ("export.xlsx", b"PK\x03\x04", "export.xlsx: unknown kind of file '.xlsx'"),
    "no usable question": ("ids.csv", b"ResponseID,Age\nR1,31\nR2,47\n", "ids.csv has no column usable as a question"),
    "no demographic": ("opinions.csv", b"Do you like it?\nYes\nNo\n", "no column named or labelled like a "
                                                                       "demographic"),
}


@pytest.mark.parametrize("name,content,message", BROKEN.values(), ids=BROKEN.keys())
def test_a_bad_file_is_one_clear_error(tmp_path, capsys, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(FocusgroupError, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_survey(tmp_path / name)
    status, out, err = run_import(capsys, tmp_path / name)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("focusgroup: error: ") and message in err
    assert not (tmp_path / name).with_suffix(".toml").exists()


def test_an_existing_spec_is_replaced_only_with_force(tmp_path, capsys):
    sav = write_sav(tmp_path)
    (tmp_path / "panel.toml").write_text("# mine\n")
    status, _, err = run_import(capsys, sav)
    assert status == 2 and "panel.toml already exists; pass --force to replace it" in err
    assert (tmp_path / "panel.toml").read_text() == "# mine\n"
    status, out, _ = run_import(capsys, sav, "--force")
    assert status == 0 and "Proposed" in out and (tmp_path / "panel.toml").read_text().startswith("# Proposed")
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []  # no temporary left


def test_an_out_path_that_is_not_a_spec_is_refused(tmp_path, capsys):
    status, _, err = run_import(capsys, write_sav(tmp_path), "--out", tmp_path / "panel.txt")
    assert status == 2 and "must end in .toml" in err
