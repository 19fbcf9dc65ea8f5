"""The tools: the command line, the demo, the benchmarks, the GPU check and
the classroom autograder's entry points.

They sit above everything else: they import the library (and the oracle
kit in :mod:`hessinv_ref.testing`), and nothing in the library imports
them.  Each is also importable under its old name, ``hessinv_ref.bench``,
``hessinv_ref.demo``, ``hessinv_ref.gpu_check``, ``hessinv_ref.grade`` and
``hessinv_ref.cli`` (the same module object), and ``python -m
hessinv_ref.gpu_check`` and ``python -m hessinv_ref.grade`` still run.
"""
