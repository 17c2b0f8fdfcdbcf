"""Teaching: the step model of a hand derivation, worked solutions, claimed values and
the files they come in, derivations written as text and the notation that maps them,
likely mistakes, grading, exercises (one, or one per student of
a class), submissions, the gradebook and feedback pages.

May import: ``jaxbp.util``, ``jaxbp.nn``, ``jaxbp.grads``, ``jaxbp.training``.
"""

from ._classroom import class_exercises, read_roster
from ._exercises import Exercise, random_exercise, seed_exercise
from ._explain import Explanation, explain
from ._explain import Step as DerivationStep
from ._gradebook import ClassGrades, ScoreRule, StudentGrade, grade_class, write_class
from ._grading import DerivationReport, check_derivation
from ._lms import canvas_csv, moodle_csv, read_roster_table
from ._networks import NetworkSpec, dumps_network, network_to_dict, read_claimed, read_network
from ._notation import Notation, PageClaim, read_derivation, read_notation
from ._steps import step_names
from ._submissions import Submission, read_submissions
from ._textread import Equation, PageRead, read_page

__all__ = [
    "ClassGrades",
    "DerivationReport",
    "DerivationStep",
    "Equation",
    "Exercise",
    "Explanation",
    "NetworkSpec",
    "Notation",
    "PageClaim",
    "PageRead",
    "ScoreRule",
    "StudentGrade",
    "Submission",
    "canvas_csv",
    "check_derivation",
    "class_exercises",
    "dumps_network",
    "explain",
    "grade_class",
    "moodle_csv",
    "network_to_dict",
    "random_exercise",
    "read_claimed",
    "read_derivation",
    "read_network",
    "read_notation",
    "read_page",
    "read_roster",
    "read_roster_table",
    "read_submissions",
    "seed_exercise",
    "step_names",
    "write_class",
]
