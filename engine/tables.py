"""The command line's text tables: pure functions from the engine's JSON-ready results
(`Simulation.to_dict`, `simulate_by_generation`, `evaluate`) to text, so `engine.cli` stays
a thin client and every table can be checked without a model.

    from engine.tables import simulation_table
    print(simulation_table(simulation.to_dict(1.0)))
"""

from __future__ import annotations

from engine.errors import FocusgroupError, capped
from engine.gaps import ALARM, GAP_ALARM_RATIO

MEASURE_NAMES = {"top_box": "top box", "mean": "mean score", "share": "share"}
SOURCE_NAMES = {"simulated": "sim", "real": "real", "logistic": "logit"}
# A label column grows to its longest label up to this width; a longer label is cut with an
# ellipsis in the table only (the JSON always carries it whole).
MAX_LABEL_WIDTH = 60


def number(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def signed(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:+.{digits}f}"


def label_width(labels, heading: str) -> int:
    """The width of a label column: its longest label or heading, at most MAX_LABEL_WIDTH."""
    return min(max(len(label) for label in [heading, *labels]), MAX_LABEL_WIDTH)


def counts_line(result: dict) -> str:
    """Personas and real answers; when only some of the slice's respondents were drawn as
    personas, how many were in the slice and whose answers the real distribution is."""
    n_slice = result.get("n_slice")
    drawn = n_slice is not None and result["n_personas"] < n_slice
    personas = f"{result['n_personas']:,} personas" + (f" drawn from {n_slice:,} in the slice" if drawn else "")
    real = f"{result['n_real']:,} real answers"
    if drawn and result.get("real") is not None:
        real += " (the whole slice's)" if result.get("real_from") == "slice" else " (the drawn personas' only)"
    return f"{personas}, {real}, temperature {result['temperature']}, model {result['model']}"


def simulation_table(result: dict) -> str:
    """`focusgroup simulate`'s table: any warning on what the model never trained on, the
    distribution beside the real one, the distances with their noise floors and baselines,
    then the slice gaps and their alarm. Option labels are shown whole up to MAX_LABEL_WIDTH."""
    lines = [f"{result['survey']} / {result['question']} / {result['slice_description']}", counts_line(result)]
    lines += [f"Warning: {warning}" for warning in result.get("warnings") or ()]
    if result["mode"] == "generate":
        lines.append(f"Generate-and-parse: {result['parse_success_rate']:.0%} of replies named a valid option")
    if result["stimulus"]:
        lines.append(f"Stimulus: {result['stimulus']}")
    if result.get("context"):
        lines.append(f"Personas are twins with their answers to {result['context_description']}"
                     + (" (baselines see them too)" if result.get("baselines") else ""))
    width = label_width(result["options"], "option")
    lines += [f"Question: {result['question_text']}", "", f"{'option':<{width + 1}}{'simulated':>10}{'real':>10}"]
    off_scale = set(result.get("off_scale") or ())
    for label in result["options"]:
        real = "-" if result["real"] is None else f"{result['real'][label]:.1%}"
        simulated = "-" if result["simulated"] is None else f"{result['simulated'][label]:.1%}"
        marker = "  (off-scale)" if label in off_scale else ""
        lines.append(f"{capped(label, width):<{width + 1}}{simulated:>10}{real:>10}{marker}")
    if result["simulated"] is None:
        lines += ["", "No reply named a valid option, so there is no simulated distribution."]
    elif result["metrics"]:
        lines += ["", "Distance to the real slice (noise floor = what a second real sample would differ by):"]
        for key in ("js", "kl", "wasserstein", "tv"):
            lines.append(f"  {key:<12}{number(result['metrics'][key]):>8}   "
                         f"noise floor {number(result['noise_floor'][key])}")
        if result.get("baselines"):
            lines.append("Baselines, JS distance: " + ", ".join(
                f"{name} {number(scores['js'])}" for name, scores in result["baselines"].items()))
            lines += fit_lines(result)
    elif result.get("in_survey") is False:
        lines += ["", "A new question: no respondent answered it, so there is no real distribution; the simulated "
                      "one stands alone."]
    else:
        lines += ["", "No real answers to compare with: the simulated distribution stands alone."]
    if result.get("gaps"):
        lines += [""] + gap_lines(result["gaps"])
    lines += ["", result["provenance"]]
    return "\n".join(lines)


def fit_lines(result: dict) -> list[str]:
    """How the baselines that read the question's answers were fitted (`baseline_fit`), and
    the exact reference of the everyone slice, which is not ranked against the model."""
    fitted: dict[str, list[str]] = {}
    for name, fit in (result.get("baseline_fit") or {}).items():
        if name in result["baselines"] and name != "uniform":
            fitted.setdefault(fit, []).append(name)
    lines = [f"  {', '.join(names)}: fitted {fit}" for fit, names in fitted.items()]
    for name, scores in (result.get("reference") or {}).items():
        lines.append(f"  {name}: JS {number(scores['js'])}, the slice's own answers (an exact reference, not a "
                     "competitor)")
    return lines


def gap_lines(gaps: dict) -> list[str]:
    """The slice gaps (`engine.gaps.GapReport.to_dict`): one row per slice (and option) with
    each measure's simulated, real and logistic gap, the summaries, and the alarm."""
    tables = list(gaps["tables"].values())
    sources = [source for source in SOURCE_NAMES if tables[0]["everyone"].get(source) is not None]
    top = f'; top box = "{gaps["positive"]}"' if gaps["positive"] else ""
    off = f"; off-scale: {', '.join(gaps['off_scale'])}" if gaps["off_scale"] else ""
    lines = [f"Do slices differ? Gap = slice minus everyone, slices of at least {gaps['min_slice']}{top}{off}."]
    if not tables[0]["rows"]:
        return lines + ["  No single-field slice is large enough to compare."]
    everyone = [f"{MEASURE_NAMES[table['measure']]} " + ", ".join(
        f"{source} {number(table['everyone'][source][0])}" for source in sources)
        for table in tables if table["measure"] != "share"]
    if everyone:
        lines.append(f"Everyone: {'; '.join(everyone)}")
    slice_names = [f"{row['field']} = {row['value']}" + (f": {row['option']}" if row["option"] else "")
                   for row in tables[0]["rows"]]
    width = label_width(slice_names, "slice")
    header = f"{'slice':<{width + 1}}{'n':>6}"
    names = [SOURCE_NAMES[source] for source in sources]
    for table in tables:
        first = f"{MEASURE_NAMES[table['measure']]} {names[0]}"
        header += f"{first:>18}" + "".join(f"{name:>8}" for name in names[1:])
    lines.append(header)
    for position, (row, name) in enumerate(zip(tables[0]["rows"], slice_names)):
        line = f"{capped(name, width):<{width + 1}}{row['n']:>6}"
        for table in tables:
            cells = [signed(table["rows"][position][source]) for source in sources]
            line += f"{cells[0]:>18}" + "".join(f"{cell:>8}" for cell in cells[1:])
        lines.append(line)
    for table in tables:
        lines.append(summary_line(table))
    if gaps["alarm"]:
        lines += [ALARM, f"  (the simulated gaps' SD {number(tables[0]['summary']['simulated_sd'])} is under "
                         f"{GAP_ALARM_RATIO:.0%} of {gaps['reference']}, {number(gaps['reference_sd'])})"]
    return lines


def summary_line(table: dict) -> str:
    """Gap correlation and spread ratio of one measure, the logistic baseline's beside."""
    summary = table["summary"]
    text = f"{MEASURE_NAMES[table['measure']].capitalize()} gaps: SD simulated {number(summary['simulated_sd'])}"
    if summary["real_sd"] is None:
        return text + " (no real gaps to compare with)"
    correlation = "undefined" if summary["correlation"] is None else f"{summary['correlation']:.2f}"
    text += (f", real {number(summary['real_sd'])}; correlation r {correlation}, "
             f"spread ratio {number(summary['spread_ratio'], 2)}")
    if summary["logistic_sd"] is not None:
        logistic = ("undefined" if summary["logistic_correlation"] is None
                    else f"{summary['logistic_correlation']:.2f}")
        text += f" (logistic: r {logistic}, spread ratio {number(summary['logistic_spread_ratio'], 2)})"
    return text


def evaluation_table(result: dict) -> str:
    """`focusgroup evaluate`'s table: one row per question, the slice means, the groups of
    trained and held-out questions, and the questions whose slices the model barely tells apart."""
    lines = [f"{result['survey']}: {result['model']} on the {result['split']} split, temperature "
             f"{result['temperature']}", "",
             f"{'question':<16}{'n':>6}{'JS':>8}{'floor':>8}{'scale_prior':>13}{'marginal':>10}{'logistic':>10}"
             f"{'log loss':>10}{'gap r':>8}{'spread':>8}"]
    for question in result["questions"]:
        population, individual = question["population"], question["individual"]
        gaps = question["gaps"]["tables"][question["gaps"]["measure"]]["summary"]
        lines.append(f"{question['id'] + ('*' if question['held_out'] else ''):<16}{population['n']:>6}"
                     f"{number(population['model']['js']):>8}{number(population['noise_floor']['js']):>8}"
                     f"{number(population['baselines'].get('scale_prior', {}).get('js')):>13}"
                     f"{number(population['baselines'].get('marginal', {}).get('js')):>10}"
                     f"{number(population['baselines'].get('logistic', {}).get('js')):>10}"
                     f"{number(individual['model']['log_loss']):>10}{number(gaps['correlation'], 2):>8}"
                     f"{number(gaps['spread_ratio'], 2):>8}")
    summary = result["summary"]["all"]
    lines += ["", f"Mean over {summary['n_slices']} question x single-field slices, JS distance: "
              f"model {number(summary['slices']['model']['js'])}, noise floor "
              f"{number(summary['slices']['noise_floor']['js'])}, "
              + ", ".join(f"{name} {number(summary['slices']['baselines'][name]['js'])}"
                          for name in summary["no_data_baselines"] + summary["data_baselines"])]
    if result["summary"]["held_out"]:
        for group, label in (("trained", "Trained questions"), ("held_out", "Held-out questions")):
            if result["summary"][group]:
                lines.append(group_line(label, result["summary"][group]))
        lines.append("* held-out question")
    gaps = summary["gaps"]
    lines.append(f"Slice gaps (gap r: simulated against real; spread: SD ratio, 1 = as varied as the real "
                 f"slices): mean r {number(gaps['mean_correlation'], 2)}, median spread ratio "
                 f"{number(gaps['median_spread_ratio'], 2)} over {gaps['n_questions']} questions")
    lines += [f"  {question_id}: {ALARM}" for question_id in gaps["alarms"]]
    return "\n".join(lines)


def group_line(label: str, summary: dict) -> str:
    """One group of questions: mean slice JS and mean log loss of the model beside the
    baselines that never saw the questions' answers (scale_prior, uniform), then beside
    those fitted on them (marginal, the best classical baseline), and the noise floor."""
    from engine.baselines import NO_DATA_BASELINES, best_classical

    slices, individual = summary["slices"], summary["individual"]

    def best(scores: dict, key: str) -> str:
        by_name = {name: s.get(key) for name, s in scores.items()}
        try:
            name = best_classical(scores, by_name)
        except FocusgroupError:
            return "best classical -"
        return f"best classical {number(by_name[name])} ({name})"

    def compared(scores: dict, key: str, without: str, with_them: str) -> str:
        no_data = ", ".join(f"{name} {number(scores[name].get(key))}" for name in NO_DATA_BASELINES if name in scores)
        marginal = [f"marginal {number(scores['marginal'].get(key))}"] if "marginal" in scores else []
        return f"{without}: {no_data}; {with_them}: {', '.join(marginal + [best(scores, key)])}"

    slice_baselines = compared(slices["baselines"], "js", "without the question's answers", "with them")
    log_loss_baselines = compared(individual["baselines"], "log_loss", "without", "with")
    return (f"{label} ({summary['n_questions']}, {summary['n_slices']} slices): "
            f"slice JS model {number(slices['model']['js'])}; {slice_baselines}; "
            f"noise floor {number(slices['noise_floor']['js'])}; "
            f"log loss model {number(individual['model']['log_loss'])}; {log_loss_baselines}")
