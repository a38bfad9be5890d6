from pathlib import Path

from monitor.config import Settings, describe

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_documents_every_option():
    for row in describe(Settings):
        assert f"| `{row['option']}` | `{row['default']!r}` |" in README, row["option"]


def test_readme_names_the_two_commands_and_ci_runs_the_test_one():
    assert "make demo" in README and "make test" in README
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in ci
