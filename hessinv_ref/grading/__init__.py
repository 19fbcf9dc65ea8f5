"""The machinery behind :mod:`hessinv_ref.grade`, the exercises' autograder.

==============================  ===============================================
module                          holds
==============================  ===============================================
``notebook``                    reading an exercise file: front matter, code cells
``runner``                      starting the grading process, assembling reports
``worker``                      the grading process: runs the cells and the checks
``harness``                     comparisons, diagnoses, guarded student calls, cases
``report``                      the report: a table, failure details, JSON
``exercises/exNN_*``            one module of checks per exercise
==============================  ===============================================
"""

from .report import CheckResult, GradeReport
from .runner import grade_files

__all__ = ["CheckResult", "GradeReport", "grade_files"]
