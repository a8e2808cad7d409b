"""`python -m bench.forgetting --quick`: the whole benchmark on a tiny Llama, end to end."""

from __future__ import annotations

import math
import re

import pytest


@pytest.mark.slow
def test_quick_forgetting_bench_prints_every_arm(need, capsys, tmp_path):
    need("konlpy")  # the quick run's Korean text ships in konlpy
    from bench import forgetting

    code = forgetting.main(["--quick", "--work", str(tmp_path)])
    out = capsys.readouterr().out
    assert code in (0, 1)  # 1: some arm missed the target, which a smoke run may do

    header = next(i for i, line in enumerate(out.splitlines()) if line.startswith("arm ") and "rise/none" in line)
    rows = out.splitlines()[header + 1 : header + 1 + len(forgetting.ARMS)]
    assert [r.split()[0] for r in rows] == list(forgetting.ARMS)
    for row in rows:
        cols = row.split()
        numbers = [float(x.split("±")[0]) for x in cols[2 if cols[0] in ("kl", "ewc") else 1 : 9 if cols[0] in ("kl", "ewc") else 8]]
        assert all(math.isfinite(x) for x in numbers), row
        assert int(numbers[0]) == forgetting.settings(True)["tokens_per_arm"]
        assert cols[-1] in ("base", "PASS", "MISS")
    # the none arm learned the domain and forgot some English: the ratios are defined
    none = rows[0].split()
    assert float(none[4]) > 0 and float(none[7]) > 0
    # the grid was printed and a weight chosen for each regularizer
    assert re.search(r"-> kl weight \S+", out) and re.search(r"-> ewc weight \S+", out)
    assert len(re.findall(r"^target: ", out, flags=re.M)) == len(forgetting.MITIGATED)
    # the run kept its summary under --work
    assert (tmp_path / "results" / "summary.json").is_file()
