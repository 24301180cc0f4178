"""`focusgroup import`: its options and the command, a thin client of `engine.surveys.importing`.

    focusgroup import panel.sav                       # proposes panel.toml beside it
    focusgroup import export.csv --out surveys/brand.toml --id brand --force

It prints one line per guess (the respondent id, the weight, each demographic field and
question with its scale type and missing codes, each skipped column and why) and writes
the spec atomically; an existing spec is replaced only with --force.
"""

from __future__ import annotations

import argparse


def add_import_parser(commands) -> argparse.ArgumentParser:
    """The `import` subcommand on the CLI's subparsers (the caller adds --data-dir)."""
    parser = commands.add_parser("import", help="propose a survey spec from an SPSS, Stata, Qualtrics or "
                                                "SurveyMonkey file's own labels")
    parser.add_argument("file", help="the export: .sav, .zsav, .por (SPSS), .dta (Stata) or .csv (Qualtrics with "
                                     "its 3 header rows, SurveyMonkey with its 2, or one header row)")
    parser.add_argument("--out", help="the spec to write, ending in .toml (default: FILE's name with .toml, "
                                      "beside it)")
    parser.add_argument("--id", dest="survey_id", help="the survey id (default: from the file's name)")
    parser.add_argument("--force", action="store_true", help="replace --out when it exists")
    return parser


def run_import(args) -> None:
    from engine.surveys.importing import import_survey
    from engine.surveys.registry import resolve_data_dir

    proposal = import_survey(args.file, args.out, args.survey_id, resolve_data_dir(args.data_dir), args.force)
    print("\n".join(proposal.report))
