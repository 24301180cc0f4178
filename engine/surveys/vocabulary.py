"""What column names and answer labels usually mean in survey exports: the vocabulary
`focusgroup import` (engine/surveys/importing.py) reads a file's metadata with.

Names are matched in a compact form (lower case, without spaces, "_", "-" or "."), so
"Respondent ID", "respondent_id" and "RespondentID" are one name; wordings (variable
labels, question texts) are searched word by word, and only when short, since a long
question that mentions "income" is a question, not the respondent's income. Every
pattern errs towards not matching: a column it misses is still proposed as a question,
and the person importing reads every guess.

    from engine.surveys.vocabulary import demographic_name, known_scale
    demographic_name("Location (Census Region)", "")  # "region"
    known_scale(["Strongly disagree", "Disagree", "Agree", "Strongly agree"])  # ("last", "agreement")
"""

from __future__ import annotations

import re

MAX_LABEL_WORDS = 6  # a wording longer than this is a question, whatever it mentions

# (field name, compact-name pattern, wording pattern), in persona order
DEMOGRAPHICS = (
    ("age", r"age\d*|age(group|cat|band|grp|rec|years)\w*|agegr\w*|howold", r"\bage\b|how old"),
    ("gender", r"(sex|gender)\d*", r"\b(gender|sex)\b"),
    ("race", r"race\w*", r"\brace\b|racial"),
    ("ethnicity", r"ethnic\w*|hisp\w*|latin\w*", r"\bethnicity\b|hispanic|latin[oax]"),
    ("education", r"educ\w*|edu|degree|educationlevel", r"\beducation|\bdegree\b|schooling"),
    ("income", r"(hh|fam|household|family|personal|total)?(income|inc)\d*|income\w*|(hh|fam)inc\w*", r"\bincome\b"),
    ("region", r"(census)?(region|division)\w*", r"\bregion\b"),
    ("state", r"state|stateabbr|statefip\w*", r"\bstate\b"),
    ("party", r"party\w*|pid\d*", r"\bparty\b|party identification"),
    ("ideology", r"ideo\w*|polviews", r"ideolog|liberal or conservative|political views"),
    ("marital", r"marital\w*|marst\w*|married", r"marital|married"),
    ("religion", r"relig\w*", r"\breligio"),
    ("employment", r"employ\w*|empstat\w*|wrkstat|workstatus", r"employ|work status"),
    ("urbanicity", r"urban\w*|urbanicity|rural\w*|sizeofplace", r"urban|rural"),
)
RESPONDENT_ID = (r"(respondent|response|resp|case|record|participant|panelist|subject|interview|person|member)"
                 r"(id|ident|identifier|num|number|no|nr|serial)|id|uuid|serial|caseno")
WEIGHT = r"\w*weight\w*|wt\w*|\w*wt\d*|wgt\w*|\w*wgt\d*"
# (compact-name pattern, why it is not a question)
BOOKKEEPING = (
    (r"(start|end|recorded|submit|submitted|response|completion|created|modified|interview)(date|time)\w*|"
     r"date|time|timestamp|datetime|datesubmitted", "a timestamp"),
    (r"ip|ipaddress|ipaddr", "an IP address"),
    (r"duration\w*|timetaken|seconds", "a duration"),
    (r"\w*email\w*|emailaddress", "an e-mail address"),
    (r"(recipient)?(first|last|full)?name", "a person's name"),
    (r"(location)?(latitude|longitude)|lat|lon|lng|zip\w*|postcode|postalcode", "a location"),
    (r"status|progress|finished|distributionchannel|userlanguage|collectorid|customdata\d*|externalreference|"
     r"externaldatareference|qrecaptchascore|useragent", "survey-platform bookkeeping"),
)
TIMESTAMP_VALUE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2}|\d{1,2}/\d{1,2}/\d{2,4},? \d{1,2}:\d{2}")
IP_VALUE = re.compile(r"\d{1,3}(\.\d{1,3}){3}|[0-9a-f]{0,4}(:[0-9a-f]{0,4}){3,7}", re.IGNORECASE)
EMAIL_VALUE = re.compile(r"[^@\s]+@[^@\s]+\.\w+")
VALUE_KINDS = ((TIMESTAMP_VALUE.match, "timestamps"), (IP_VALUE.fullmatch, "IP addresses"),
               (EMAIL_VALUE.fullmatch, "e-mail addresses"))
OFF_SCALE = re.compile(r"\b(don'?t know|do not know|not sure|unsure|refused?|prefer not|no opinion|not applicable|"
                       r"n/a|can'?t say|cannot say|decline[ds]?|no answer|skipped)\b", re.IGNORECASE)

# Ordered answer scales, favourable end first; a question whose labels all come from one
# is ordinal, and the order of its codes says which end is favourable.
SCALES = {
    "agreement": ("strongly agree", "agree strongly", "agree", "somewhat agree", "tend to agree", "slightly agree",
                  "neither agree nor disagree", "neutral", "slightly disagree", "tend to disagree",
                  "somewhat disagree", "disagree", "disagree strongly", "strongly disagree"),
    "likelihood": ("extremely likely", "very likely", "likely", "somewhat likely", "neither likely nor unlikely",
                   "somewhat unlikely", "not very likely", "unlikely", "very unlikely", "not at all likely",
                   "extremely unlikely"),
    "satisfaction": ("extremely satisfied", "very satisfied", "satisfied", "somewhat satisfied",
                     "neither satisfied nor dissatisfied", "somewhat dissatisfied", "dissatisfied",
                     "very dissatisfied", "extremely dissatisfied"),
    "importance": ("extremely important", "very important", "important", "somewhat important",
                   "moderately important", "slightly important", "not very important", "not too important",
                   "not important", "not at all important"),
    "quality": ("excellent", "very good", "good", "fair", "poor", "very poor"),
    "frequency": ("always", "almost always", "very often", "often", "most of the time", "frequently",
                  "sometimes", "occasionally", "rarely", "seldom", "hardly ever", "almost never", "never"),
    "amount": ("a great deal", "a lot", "quite a bit", "a fair amount", "a moderate amount", "some", "a little",
               "not much", "not very much", "none at all", "not at all", "none"),
    "approval": ("strongly approve", "approve", "somewhat approve", "somewhat disapprove", "disapprove",
                 "strongly disapprove"),
    "intent": ("definitely will", "probably will", "might or might not", "probably will not", "probably won't",
               "definitely will not", "definitely won't"),
    "familiarity": ("extremely familiar", "very familiar", "somewhat familiar", "not very familiar",
                    "not at all familiar"),
    "interest": ("extremely interested", "very interested", "somewhat interested", "not very interested",
                 "not at all interested"),
    "comparison": ("much better", "somewhat better", "better", "about the same", "the same", "worse",
                   "somewhat worse", "much worse"),
}
# Education levels, lowest first: a label's level is the first of these it mentions.
EDUCATION_LEVELS = (
    (r"less than high school|no high school|did not (finish|graduate|complete)|no formal|primary|elementary", 0),
    (r"some college|associate|vocational|technical|trade school", 2),
    (r"high school|secondary|ged\b|diploma", 1),
    (r"bachelor|college degree|4-year|four-year|undergraduate", 3),
    (r"graduate|master|doctor|ph\.?d|professional|postgrad", 4),
)
LEADING_NUMBER = re.compile(r"^\D{0,12}?(-?\d[\d,]*(\.\d+)?)")
BELOW = re.compile(r"(less than|under|below|fewer than|up to|<)", re.IGNORECASE)


def compact(name: str) -> str:
    return re.sub(r"[\s_.\-]+", "", str(name).casefold())


def short_wording(text: str) -> str:
    """The wording when short enough to name what a column is, else ""."""
    return text.casefold() if 0 < len(text.split()) <= MAX_LABEL_WORDS else ""


def demographic_name(name: str, text: str) -> tuple[str, str] | None:
    """(field name, why) for a column named or labelled like a demographic, else None."""
    for field, name_pattern, wording_pattern in DEMOGRAPHICS:
        if re.fullmatch(name_pattern, compact(name)):
            return field, f"its name reads as {field}"
        if re.search(wording_pattern, short_wording(text)) or re.search(wording_pattern, short_wording(name)):
            return field, f"its wording reads as {field}"
    return None


def is_respondent_id(name: str, text: str) -> bool:
    return bool(re.fullmatch(RESPONDENT_ID, compact(name)) or re.search(r"respondent id|case id", short_wording(text)))


def is_weight_name(name: str) -> bool:
    return bool(re.fullmatch(WEIGHT, compact(name)))


def bookkeeping(name: str, sample: list[str]) -> str | None:
    """Why a column is survey bookkeeping rather than an answer (by its name or its values), else None."""
    for pattern, why in BOOKKEEPING:
        if re.fullmatch(pattern, compact(name)):
            return why
    values = [value for value in sample if value]
    return next((why for matches, why in VALUE_KINDS if values and all(map(matches, values))), None)


def is_off_scale(label: str) -> bool:
    """"Don't know", "Refused", "Prefer not to say": an answer with no place on a scale."""
    return bool(OFF_SCALE.search(label))


def scale_ranks(labels: list[str]) -> tuple[str, list[int]] | None:
    """(scale name, each label's rank on it, favourable first) when the distinct `labels`
    all come from one known scale, else None."""
    folded = [" ".join(label.casefold().split()) for label in labels]
    for name, scale in SCALES.items():
        if len(set(folded)) == len(folded) >= 2 and all(label in scale for label in folded):
            return name, [scale.index(label) for label in folded]
    return None


def known_scale(labels: list[str]) -> tuple[str, str] | None:
    """(favourable end, scale name) when the on-scale `labels` come from one known scale in
    its order ("first") or reversed ("last"), else None."""
    found = scale_ranks([label for label in labels if not is_off_scale(label)])
    if found is None:
        return None
    name, ranks = found
    if ranks in (sorted(ranks), sorted(ranks, reverse=True)):
        return ("first" if ranks == sorted(ranks) else "last"), name
    return None


def label_order(labels: list[str]) -> tuple[list[str], str]:
    """Text answers in their natural order, and why: a known scale, education levels,
    leading numbers ("18-29", "$25,000 - $49,999", "> 60") or, failing those, alphabetical;
    off-scale answers ("Don't know") last."""
    on_scale = [label for label in labels if not is_off_scale(label)]
    off_scale = sorted(label for label in labels if is_off_scale(label))
    found = scale_ranks(on_scale)
    if found is not None:
        ranks = dict(zip(on_scale, found[1]))
        return sorted(on_scale, key=ranks.get) + off_scale, f"the {found[0]} scale"
    if {label.casefold() for label in on_scale} == {"yes", "no"}:
        return sorted(on_scale, key=lambda label: label.casefold() != "yes") + off_scale, "yes before no"
    levels = [education_level(label) for label in on_scale]
    if len(on_scale) >= 2 and None not in levels and len(set(levels)) == len(levels):
        return sorted(on_scale, key=education_level) + off_scale, "education levels"
    numbers = [leading_number(label) for label in on_scale]
    if len(on_scale) >= 2 and None not in numbers and len(set(numbers)) == len(numbers):
        return sorted(on_scale, key=leading_number) + off_scale, "their leading numbers"
    return sorted(on_scale, key=str.casefold) + off_scale, "no known order (alphabetical)"


def education_level(label: str) -> int | None:
    folded = label.casefold()
    return next((level for pattern, level in EDUCATION_LEVELS if re.search(pattern, folded)), None)


def leading_number(label: str) -> float | None:
    """The number a label starts with: 25000 for "$25,000 - $49,999", 60 for "> 60"."""
    found = LEADING_NUMBER.match(label.strip())
    if found is None:
        return None
    return float(found.group(1).replace(",", "")) - (0.5 if BELOW.match(label.strip()) else 0)
