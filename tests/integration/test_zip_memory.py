"""results.zip of a 200-item batch streams with the API's memory growth under 50 MB (issue 4, criterion 2).

Runs bench/zip_memory.py's logic: its own redis-server, S3 server and API process (no worker; the results are
simulated, 512 KB of noise per item, so the zip is about 100 MB, twice the budget).
"""

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench" / "zip_memory.py"
BUDGET_MB = 50


def _bench():
    spec = importlib.util.spec_from_file_location("zip_memory_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_200_item_results_zip_streams_with_api_memory_growth_under_50_mb(capsys):
    bench = _bench()
    result = bench.run(items=200, item_kb=512)
    with capsys.disabled():  # the figure is printed even without -s
        print(
            "\n" + bench.report(result, f"pytest {Path(__file__).relative_to(BENCH.parents[1])}", BUDGET_MB)
        )
    assert result.zip_bytes > 1.5 * BUDGET_MB * bench.MB  # a zip built in memory would blow the budget
    assert result.testzip_ok and result.entries == 200 and result.names_match
    assert result.growth < BUDGET_MB * bench.MB, f"API grew {result.growth / bench.MB:.1f} MB"
