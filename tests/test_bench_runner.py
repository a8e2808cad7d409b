"""The bench runner keeps the sections of benchmarks it did not re-run."""

from __future__ import annotations

from bench import __main__ as runner


def test_subset_run_replaces_only_its_section(tmp_path, monkeypatch):
    out = tmp_path / "results.txt"
    runner.write_sections(out, {"langid": "## bench.langid\nold langid table\n", "pii": "## bench.pii\nold pii table\n"})
    monkeypatch.setattr(runner, "run_one", lambda name, quick, env, extra=None: (f"## bench.{name}\nnew {name} table\n", 0))

    assert runner.main(["pii", "--out", str(out)]) == 0

    sections = runner.read_sections(out)
    assert list(sections) == ["langid", "pii"]
    assert sections["langid"] == "## bench.langid\nold langid table\n"
    assert sections["pii"] == "## bench.pii\nnew pii table\n"


def test_failed_benchmark_is_reported_and_still_saved(tmp_path, monkeypatch):
    out = tmp_path / "results.txt"
    monkeypatch.setattr(runner, "run_one", lambda name, quick, env, extra=None: (f"## bench.{name}\ncrashed\n", 1))
    assert runner.main(["langid", "--out", str(out)]) == 1
    assert runner.read_sections(out)["langid"] == "## bench.langid\ncrashed\n"


def test_extra_arguments_reach_the_one_named_benchmark(tmp_path, monkeypatch):
    out = tmp_path / "results.txt"
    seen = {}

    def fake(name, quick, env, extra=None):
        seen[name] = extra
        return f"## bench.{name}\nran\n", 0

    monkeypatch.setattr(runner, "run_one", fake)
    assert runner.main(["forgetting", "--out", str(out), "--args", "--jobs 2 --threads 1"]) == 0
    assert seen == {"forgetting": ["--jobs", "2", "--threads", "1"]}


def test_extra_arguments_need_exactly_one_benchmark(tmp_path):
    import pytest

    with pytest.raises(SystemExit):
        runner.main(["pii", "langid", "--out", str(tmp_path / "r.txt"), "--args", "--quick"])


def test_progress_bars_are_shown_but_not_saved():
    lines = [
        "measure | base | extended\n",
        "\n",
        "Loading weights:   0%|          | 0/272 [00:00<?, ?it/s]\n",
        "Loading weights: 100%|██████████| 272/272 [00:00<00:00, 3268.26it/s]\n",
        "\n",
        "\n",
        "ppl after resize | 1368 | PASS\n",
    ]
    assert runner.saved_lines(lines) == ["measure | base | extended\n", "\n", "ppl after resize | 1368 | PASS\n"]
