"""Champion / challenger: the gate's stated test (exact values), the append-only log (serving version, rollback,
torn lines), `pivotal models promote | rollback | show`, staleness per (model, symbol) and the risk engine feed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.core.clock import SimulatedClock
from pivotal.core.errors import UserInputError
from pivotal.risk.config import RiskConfig
from pivotal.risk.engine import RiskEngine
from pivotal.services.online import feed_risk, online_status, serving_info, staleness
from pivotal.training.checkpoints import CheckpointManager
from pivotal.training.online import OnlineConfig, OnlineTrainer
from pivotal.training.promotion import GateConfig, GateResult, PromotionLog, gate
from tests.training.online_fixtures import T0, base_checkpoint, make_samples, open_sqlite

runner = CliRunner()


def test_gate_is_a_one_sided_paired_t_test() -> None:
    d = np.r_[np.full(10, 0.1), np.full(10, 0.3)]
    champion, challenger = 1.0 + d, np.ones(20)
    result = gate(champion, challenger, GateConfig(alpha=0.05, min_samples=20))
    t = 0.2 / (math.sqrt(0.2 / 19) / math.sqrt(20))
    assert result.promote and result.n == 20
    assert result.mean_diff == pytest.approx(0.2)
    assert result.t_stat == pytest.approx(t)
    assert result.p_value == pytest.approx(stats.t.sf(t, 19))
    assert "beats" in result.reason


def test_gate_refuses_a_challenger_that_is_not_better() -> None:
    d = np.r_[np.full(10, 0.1), np.full(10, -0.1)]  # mean 0
    result = gate(1.0 + d, np.ones(20))
    assert not result.promote and result.p_value == pytest.approx(0.5)
    worse = gate(np.ones(30), np.full(30, 1.5))  # constant difference below zero
    assert not worse.promote and worse.p_value == 1.0


def test_gate_refuses_too_few_samples_and_ignores_nan_pairs() -> None:
    a, b = np.r_[np.full(19, 2.0), np.nan], np.ones(20)
    result = gate(a, b, GateConfig(min_samples=20))
    assert not result.promote and result.n == 19 and result.reason == "only 19 samples < 20"
    with pytest.raises(ValueError, match="two 1-D arrays of one length"):
        gate(np.ones(3), np.ones(4))


def _result(promote: bool) -> GateResult:
    return GateResult(promote, 30, 0.1 if promote else -0.1, 2.0, 0.02 if promote else 0.9, 0.05, "test")


def test_log_serving_history_and_rollback(tmp_path: Path) -> None:
    log = PromotionLog(tmp_path, "m")
    assert log.serving() is None
    log.promote("a", now_ms=1)
    log.decide("b", _result(False), now_ms=2)
    log.decide("c", _result(True), now_ms=3)
    log.decide("d", _result(True), now_ms=4)
    assert log.serving() == "d" and log.history() == ["a", "c", "d"]
    back = log.rollback(now_ms=5)
    assert (back.version, back.previous, back.action) == ("c", "d", "rollback")
    assert log.serving() == "c"
    assert log.rollback(now_ms=6).version == "a"
    with pytest.raises(UserInputError, match="nothing to roll back to"):
        log.rollback()
    actions = [(e.action, e.version, e.at_ms) for e in log.events()]
    assert actions == [("promote", "a", 1), ("refuse", "b", 2), ("promote", "c", 3), ("promote", "d", 4),
                       ("rollback", "c", 5), ("rollback", "a", 6)]  # fmt: skip
    assert len(log.path.read_text().splitlines()) == 6  # append-only: one line per decision


def test_log_ignores_a_torn_last_line_and_names_a_bad_middle_line(tmp_path: Path) -> None:
    log = PromotionLog(tmp_path, "m")
    log.promote("a", now_ms=1)
    with open(log.path, "a") as handle:
        handle.write('{"name": "m", "act')  # a writer killed mid-line
    assert log.serving() == "a"
    log.path.write_text("garbage\n" + log.path.read_text().splitlines()[0] + "\n")
    with pytest.raises(UserInputError, match=r"promotions.jsonl line 1: not a promotion event"):
        log.serving()


def test_log_is_read_incrementally_and_a_rewritten_file_is_read_again(tmp_path: Path) -> None:
    """Serving polls the log on every event: the cached prefix must follow appends from another instance (another
    process's trainer), a replaced file and a file rewritten in place, and still name a bad line by its number."""
    reader, writer = PromotionLog(tmp_path, "m"), PromotionLog(tmp_path, "m")
    writer.promote("a", now_ms=1)
    assert reader.serving() == "a"
    writer.decide("b", _result(False), now_ms=2)
    writer.decide("c", _result(True), now_ms=3)
    assert reader.serving() == "c" and [e.version for e in reader.events()] == ["a", "b", "c"]
    with open(reader.path, "a") as handle:  # an append in progress: not served until its line is complete
        handle.write(json.dumps({"name": "m", "action": "promote"})[:20])
    assert reader.serving() == "c"
    lines = reader.path.read_text().splitlines()[:3]
    reader.path.write_text("\n".join(lines) + "\n")  # the torn tail cut, as a restore from a backup would
    writer.decide("d", _result(True), now_ms=4)
    assert reader.serving() == "d" and len(reader.events()) == 4
    first = reader.path.read_text().splitlines()[0]
    replaced = tmp_path / "replacement.jsonl"
    replaced.write_text(first.replace('"a"', '"z"') + "\n")  # a shorter file under the same name
    replaced.replace(reader.path)
    assert reader.serving() == "z" and len(reader.events()) == 1
    same_size = first.replace('"a"', '"y"') + "\n"
    reader.path.write_text(same_size)  # rewritten in place, same inode and size
    assert reader.serving() == "y"
    writer.decide("e", _result(True), now_ms=5)
    assert reader.serving() == "e"
    text = reader.path.read_text().splitlines()
    reader.path.write_text("\n".join([text[0], "garbage", text[1]]) + "\n")
    with pytest.raises(UserInputError, match=r"promotions.jsonl line 2: not a promotion event"):
        reader.serving()


def _online_model(data_dir: Path) -> tuple[Path, list[str]]:
    root = data_dir / "models"
    base = base_checkpoint(root)
    q = open_sqlite(data_dir)
    q.put(make_samples(8, "BTC/USDT") + make_samples(4, "ETH/USDT", start=20))
    trainer = OnlineTrainer(root, "m", q, OnlineConfig(batch_size=6, steps_per_batch=1, block_ms=0, consumer="t"))
    versions = [base.id] + [r.version for r in (trainer.step(), trainer.step()) if r is not None and r.version]
    q.close()
    return root, versions


def test_staleness_is_now_minus_the_serving_versions_newest_sample(tmp_path: Path) -> None:
    root, (_, _, second) = _online_model(tmp_path)
    now = T0 + 10 * 3_600_000
    # never promoted beyond the base: its data span ends at T0 for BTC/USDT only
    assert staleness(root, "m", now).staleness_ms == {"BTC/USDT": now - T0}
    PromotionLog(root, "m").promote(second)
    report = staleness(root, "m", now)
    btc_through = make_samples(8)[-1].known_at
    eth_through = make_samples(4, "ETH/USDT", start=20)[-1].known_at
    assert report.version == second
    assert report.trained_through == {"BTC/USDT": btc_through, "ETH/USDT": eth_through}
    assert report.staleness_ms == {"BTC/USDT": now - btc_through, "ETH/USDT": now - eth_through}


def test_staleness_trips_the_risk_engines_stale_model_breaker(tmp_path: Path) -> None:
    root, (_, _, second) = _online_model(tmp_path)
    PromotionLog(root, "m").promote(second)
    btc = make_samples(8)[-1].known_at
    eth = make_samples(4, "ETH/USDT", start=20)[-1].known_at
    clock = SimulatedClock(eth)  # BTC/USDT's newest sample is 16 min older than ETH/USDT's
    engine = RiskEngine(RiskConfig(stale_model_ms=20 * 60_000), clock=clock)
    feed_risk(engine, staleness(root, "m", clock.now_ms()))
    assert not engine.trips
    clock.advance(20 * 60_000 - (eth - btc) + 1)  # BTC/USDT's model age passes 20 min; ETH/USDT's does not
    engine.check_time()
    (trip,) = engine.trips.values()
    assert (trip.rule, trip.value, trip.threshold) == ("stale_model", 20 * 60_000 + 1, 20 * 60_000)


def test_cli_promote_rollback_and_show(tmp_path: Path) -> None:
    root, (base, _, second) = _online_model(tmp_path / "pivotal-data")
    out = runner.invoke(app, ["models", "promote", "m", second])
    assert out.exit_code == 0, out.output
    assert f"{second} serves now (was {base})" in out.output
    assert serving_info(root, "m").id == second
    shown = json.loads(runner.invoke(app, ["models", "show", f"m/{second}"]).output)
    assert shown["online"]["serving"] == second and set(shown["online"]["staleness_ms"]) == {"BTC/USDT", "ETH/USDT"}
    assert shown["online"]["promotions"] == 2 and shown["online"]["last_metrics"]["version"] == second
    out = runner.invoke(app, ["models", "rollback", "m"])
    assert out.exit_code == 0 and f"rolled back to {base} (was {second})" in out.output
    missing = runner.invoke(app, ["models", "promote", "m", "nope"])
    assert missing.exit_code == 1 and "has no checkpoint 'nope'" in missing.output
    again = runner.invoke(app, ["models", "rollback", "m"])
    assert again.exit_code == 1 and "nothing to roll back to" in again.output


def test_show_without_online_training_is_unchanged(tmp_path: Path) -> None:
    root = tmp_path / "pivotal-data" / "models"
    info = base_checkpoint(root)
    assert online_status(root, "m") is None
    shown = json.loads(runner.invoke(app, ["models", "show", "m"]).output)
    assert "online" not in shown and shown["id"] == info.id
    assert CheckpointManager(root).best("m") is not None
