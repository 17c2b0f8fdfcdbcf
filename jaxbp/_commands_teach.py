"""The ``jaxbp`` command's teaching subcommands: ``explain``, ``check``, ``exercise``
(one, or one per student of a class) and ``grade``; their arguments and what each runs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ._args import check_out, credit, nonneg_int, positive_float, positive_int, sizes, write_text
from .teach import (
    NetworkSpec,
    ScoreRule,
    check_derivation,
    class_exercises,
    dumps_network,
    explain,
    grade_class,
    network_to_dict,
    random_exercise,
    read_claimed,
    read_derivation,
    read_network,
    read_roster,
    read_roster_table,
    read_submissions,
    write_class,
)
from .teach._submissions import PAGES

__all__ = ["TEACH_COMMANDS", "add_teach_commands"]


def add_teach_commands(sub) -> None:
    """The parsers of ``explain``, ``check``, ``exercise`` and ``grade``."""
    _explain_parser(sub)
    _check_parser(sub)
    _exercise_parser(sub)
    _grade_parser(sub)


def _explain_parser(sub) -> None:
    ex = sub.add_parser(
        "explain", help="a worked solution, step by step (the seed exercise by default)"
    )
    ex.add_argument(
        "--network",
        type=Path,
        metavar="FILE",
        help="network file (JSON or TOML); default: the seed",
    )
    ex.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    ex.add_argument(
        "--out", type=Path, metavar="FILE", help="write to FILE instead of the terminal"
    )


def _check_parser(sub) -> None:
    ck = sub.add_parser("check", help="grade a hand derivation (exit 0 only if nothing is wrong)")
    ck.add_argument(
        "claimed",
        type=Path,
        metavar="CLAIMED",
        help="claimed steps: JSON or TOML, or a page as written (.md with LaTeX, .txt, .tex)",
    )
    ck.add_argument(
        "--notation",
        type=Path,
        metavar="FILE",
        help="for a page: what its symbols are among the steps (TOML or JSON; default: "
        "jaxbp's names and the common textbook ones)",
    )
    ck.add_argument(
        "--network",
        type=Path,
        metavar="FILE",
        help="network file; default: the one in CLAIMED, else the seed",
    )
    ck.add_argument("--format", choices=("text", "json"), default="text")


def _exercise_parser(sub) -> None:
    xr = sub.add_parser(
        "exercise", help="a fresh exercise with small integer weights, and its solution"
    )
    xr.add_argument("--sizes", type=sizes, default=(3, 2, 1), help="layer widths (default 3,2,1)")
    xr.add_argument("--seed", type=nonneg_int, default=0, help="which exercise (default 0)")
    xr.add_argument("--activation", default="sigmoid", help="hidden activation (default sigmoid)")
    xr.add_argument(
        "--loss",
        default="bce",
        help="bce, mse, mse_linear, half_mse or half_mse_linear (default bce)",
    )
    xr.add_argument("--batch", type=positive_int, default=1, help="examples (default 1)")
    xr.add_argument(
        "--class",
        dest="roster",
        type=Path,
        metavar="ROSTER",
        help="one exercise per student id in ROSTER (text, or CSV with a student column) "
        "into --out DIR/<id>/, solutions in DIR/_keys/<id>/",
    )
    xr.add_argument(
        "--course-seed",
        type=nonneg_int,
        default=0,
        help="with --class: the seed every student's network is derived from (default 0)",
    )
    xr.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write network.json, solution.txt, solution.md and solution.json to DIR",
    )


def _grade_parser(sub) -> None:
    gr = sub.add_parser(
        "grade", help="grade a class's derivations: grades.csv, feedback pages, class report"
    )
    gr.add_argument(
        "submissions",
        type=Path,
        metavar="SUBMISSIONS",
        help="a folder with one derivation per student (<id>.json or .toml, or a page as "
        "written: <id>.md, .txt, .tex), "
        "or one CSV with a student column and one column per entry (dL/dW1[2,1])",
    )
    which = gr.add_mutually_exclusive_group()
    which.add_argument(
        "--network", type=Path, metavar="FILE", help="the network set to all (default: the seed)"
    )
    which.add_argument(
        "--exercises",
        type=Path,
        metavar="DIR",
        help="each student's own network, as jaxbp exercise --class wrote it (DIR/<id>/)",
    )
    gr.add_argument("--out", type=Path, required=True, metavar="DIR", help="where results go")
    gr.add_argument(
        "--roster",
        type=Path,
        metavar="FILE",
        help="the class's ids (text or CSV): students without a submission get a row "
        "(default with --exercises: its student folders)",
    )
    gr.add_argument(
        "--graded-steps",
        "--steps",  # the older spelling, still accepted (demo's --steps counts updates)
        dest="graded_steps",
        type=lambda t: tuple(s.strip() for s in t.split(",") if s.strip()),
        metavar="NAMES",
        help="the derivation steps the exercise asks for, comma-separated (default: every step)",
    )
    _credit_options(gr)
    gr.add_argument(
        "--notation",
        type=Path,
        metavar="FILE",
        help="what the symbols of submissions written as text (.md, .txt, .tex) are among "
        "the steps (default: jaxbp's names and the common textbook ones)",
    )


def _credit_options(gr) -> None:
    """``grade``'s marking credits and what its LMS files say of the assignment."""
    gr.add_argument(
        "--no-carry-forward",
        action="store_true",
        help="no credit for values that follow from an earlier error (default: full credit)",
    )
    gr.add_argument(
        "--carry-forward-credit",
        type=credit,
        default=1.0,
        metavar="C",
        help="credit (0-1) for a value that follows from an earlier error (default 1)",
    )
    gr.add_argument(
        "--rounding-credit",
        type=credit,
        default=1.0,
        metavar="C",
        help="credit (0-1) for a value that follows from rounded values (default 1)",
    )
    gr.add_argument(
        "--slip-credit",
        type=credit,
        default=0.5,
        metavar="C",
        help="credit (0-1) for a wrong value whose working is right: an arithmetic slip "
        "(default 0.5)",
    )
    gr.add_argument(
        "--assignment",
        default="Derivation",
        metavar="NAME",
        help="the assignment's column in canvas.csv and moodle.csv (default 'Derivation')",
    )
    gr.add_argument(
        "--points",
        type=positive_float,
        default=100.0,
        metavar="P",
        help="what the assignment is worth in canvas.csv (default 100)",
    )


def _explain(args) -> int:
    if args.out is not None:
        check_out(args.out)
    net = read_network(args.network)
    sol = explain(net.params, net.x, net.y, activation=net.activation, loss=net.loss)
    text = {"text": sol.to_text, "markdown": sol.to_markdown, "json": sol.to_json}[args.format]()
    if args.out is None:
        print(text)
    else:
        write_text(args.out, text)
    return 0


def _check(args) -> int:
    read = None
    if args.claimed.suffix.lower() in PAGES:
        net = read_network(args.network)
        read = read_derivation(args.claimed, net, notation=args.notation)
        claimed = read.claimed
    else:
        if args.notation is not None:
            raise ValueError(
                f"--notation is for pages written as text (.md, .txt, .tex); {args.claimed} is not one"
            )
        claimed, embedded = read_claimed(args.claimed)
        net = read_network(args.network) if (args.network or embedded is None) else embedded
    try:
        working = {"workings": read.workings, "sources": read.sources} if read else {}
        report = check_derivation(
            net.params, net.x, net.y, claimed, activation=net.activation, loss=net.loss, **working
        )
    except (TypeError, ValueError) as e:
        raise ValueError(f"{args.claimed}: {e}") from None
    problems, not_graded = (read.problems, read.not_graded) if read else ([], [])
    if not report.graded:
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        print(f"jaxbp check: {args.claimed} claims no step: nothing to grade", file=sys.stderr)
        return 1
    if args.format == "json":
        doc = json.loads(report.to_json())
        print(json.dumps({**doc, "not_read": problems, "not_graded": not_graded}, indent=2))
    else:
        print(report)
        for title, lines in (("Not read", problems), ("Not graded", not_graded)):
            if lines:
                print(f"\n{title}:")
                print("\n".join(f"  {line}" for line in lines))
    return 0 if report.ok else 1


def _exercise(args) -> int:
    if args.roster is not None:
        return _class_exercises(args)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; expected a folder")
    ex = random_exercise(
        args.seed, args.sizes, activation=args.activation, loss=args.loss, batch=args.batch
    )
    spec = NetworkSpec(ex.params, ex.x, ex.y, ex.activation, ex.loss)
    sol = explain(ex.params, ex.x, ex.y, activation=ex.activation, loss=ex.loss)
    network = dumps_network(network_to_dict(spec))
    if args.out is None:
        print(network)
        print()
        print(sol.to_text())
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("network.json", network + "\n"),
        ("solution.txt", sol.to_text()),
        ("solution.md", sol.to_markdown()),
        ("solution.json", sol.to_json() + "\n"),
    ):
        write_text(args.out / name, text)
    print(
        f"wrote {args.out}/network.json and its worked solution (solution.txt, solution.md, solution.json)"
    )
    return 0


def _grade(args) -> int:
    start = time.perf_counter()
    subs = read_submissions(args.submissions)
    if not subs:
        raise ValueError(f"{args.submissions}: no submissions found")
    rule = ScoreRule(
        rounding=args.rounding_credit,
        inherited=0.0 if args.no_carry_forward else args.carry_forward_credit,
        slip=args.slip_credit,
    )
    table = read_roster_table(args.roster) if args.roster is not None else None
    roster = list(table) if table is not None else None
    grades = grade_class(
        subs,
        network=args.network,
        exercises=args.exercises,
        rule=rule,
        steps=args.graded_steps,
        roster=roster,
        notation=args.notation,
    )
    write_class(grades, args.out, assignment=args.assignment, points=args.points, roster=table)
    graded = [g for g in grades.grades if g.report is not None]
    full = sum(g.fully_graded for g in grades.grades)
    absent = [g.student for g in grades.grades if not g.submitted]
    print(
        f"graded {len(graded)} of {len(grades.grades) - len(absent)} submissions ({full} in full"
        + (f"; {len(absent)} on the roster handed nothing in" if absent else "")
        + ") in "
        f"{time.perf_counter() - start:.1f} s -> {args.out}/grades.csv, "
        f"{args.out}/feedback/<id>.md|.html, {args.out}/class_report.md, "
        f"{args.out}/canvas.csv, {args.out}/moodle.csv"
    )
    for p in dict.fromkeys(p for g in grades.grades if g.submitted for p in g.problems):
        print(f"  {p}", file=sys.stderr)
    return grades.exit_code


def _class_exercises(args) -> int:
    if args.out is None:
        raise ValueError("--class needs --out DIR: the folder the class's exercises go into")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} is a file; expected a folder")
    roster = read_roster(args.roster)
    folders = class_exercises(
        roster,
        args.out,
        sizes=args.sizes,
        activation=args.activation,
        loss=args.loss,
        batch=args.batch,
        course_seed=args.course_seed,
    )
    print(
        f"wrote {len(folders)} exercises to {args.out}/<id>/ (network.json, sheet.md, "
        f"sheet.html); solutions in {args.out}/_keys/<id>/"
    )
    return 0


TEACH_COMMANDS = {"explain": _explain, "check": _check, "exercise": _exercise, "grade": _grade}
