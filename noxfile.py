"""nox sessions: tests, lint, docs, asv smoke run.  Run ``nox -l`` to list them."""

import nox

nox.options.sessions = ["tests", "lint"]


@nox.session
def tests(session):
    """The whole test suite, with PyTorch as the parity oracle."""
    session.install(".[test]")
    session.install("torch==2.13.0")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def tests_no_torch(session):
    """The test suite without PyTorch: parity tests must skip cleanly."""
    session.install(".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session):
    session.install("ruff")
    session.run("ruff", "check", "nbops", "tests", "asv_bench", "noxfile.py")


@nox.session
def docs(session):
    """Build the Sphinx docs with warnings as errors, and run the doctests."""
    session.install(".[docs]")
    session.run("sphinx-build", "-W", "-b", "html", "docs", "docs/_build/html")
    session.run("sphinx-build", "-W", "-b", "doctest", "docs", "docs/_build/doctest")


@nox.session
def asv_smoke(session):
    """Every benchmark once, in this environment (checks they run, not timings)."""
    session.install(".[bench]")
    session.install("torch==2.13.0")
    session.chdir("asv_bench")
    session.run("asv", "machine", "--yes")
    session.run("asv", "run", "--python=same", "--quick", "--show-stderr",
                "--dry-run")
