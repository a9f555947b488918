"""`carepath evaluate FILE|-`: one JSON object on stdout, field-naming errors on stderr."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from carepath.main import main
from carepath_pathway.cli import evaluate_command

EPISODE = {
    "episode_id": "cli-1",
    "region": "lumbar",
    "medial_branch_blocks": [{"relief_percent": 60}],
    "radicular_pain": False,
}


def write(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "episode.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_evaluates_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAREPATH_PATHWAY_PROFILE", raising=False)
    assert evaluate_command(write(tmp_path, EPISODE), None) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1
    data = json.loads(out)
    assert {"pathway", "pathway_version", "urgent", "recommendations", "missing_data"} <= set(data)
    assert data["pathway"] == "failed-facet-injection" and data["profile"] == "seed"
    for r in data["recommendations"]:
        assert {"step", "team", "priority", "rationale", "evidence", "thresholds"} <= set(r)
    assert "ablation.rfa" not in [r["step"] for r in data["recommendations"]]  # 60% < 70%


def test_evaluates_stdin_text_and_bytes(capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(EPISODE)))
    assert evaluate_command("-", "seed") == 0
    first = json.loads(capsys.readouterr().out)

    class Binary:
        buffer = io.BytesIO(json.dumps(EPISODE).encode())

    monkeypatch.setattr("sys.stdin", Binary())
    assert evaluate_command("-", "seed") == 0
    assert json.loads(capsys.readouterr().out) == first


def test_profile_switch_changes_the_mbb_outcome(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, EPISODE)
    assert evaluate_command(path, "consensus-2020") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["profile"] == "consensus-2020"
    rfa = [r for r in data["recommendations"] if r["step"] == "ablation.rfa"]
    assert rfa and rfa[0]["thresholds"]["mbb_relief_percent"] == 50


def test_profile_from_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREPATH_PATHWAY_PROFILE", "consensus-2020")
    assert evaluate_command(write(tmp_path, EPISODE), None) == 0
    assert json.loads(capsys.readouterr().out)["profile"] == "consensus-2020"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"age": 40}, "region"),
        ({"region": "lumbar", "age": "5"}, "age"),
        ({"region": "lumbar", "pain_nrs": 12}, "pain_nrs"),
        ({"region": "lumbar", "medial_branch_blocks": [{"relief_percent": 101}]},
         "medial_branch_blocks[0].relief_percent"),
        ({"region": "thoracic"}, "region"),
        ({"region": "lumbar", "colour": "blue"}, "colour"),
        ({"region": "lumbar", "radicular_pain": "yes"}, "radicular_pain"),
    ],
)
def test_invalid_episode_exits_non_zero_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: dict[str, Any], named: str
) -> None:
    assert evaluate_command(write(tmp_path, data), None) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{named}:" in err


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_invalid_json_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     text: str) -> None:
    assert evaluate_command(write(tmp_path, text), None) == 2
    out, err = capsys.readouterr()
    assert out == "" and err


def test_unreadable_file_and_unknown_profile(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate_command(str(tmp_path / "nope.json"), None) == 2
    assert "cannot read" in capsys.readouterr().err
    assert evaluate_command(write(tmp_path, EPISODE), "strict") == 2
    assert "unknown pathway profile" in capsys.readouterr().err


def test_console_main_evaluate_subcommand(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, EPISODE)
    assert main(["evaluate", path, "--profile", "sis"]) == 0
    assert json.loads(capsys.readouterr().out)["profile"] == "sis"
    assert main(["evaluate", write(tmp_path, {"region": 3})]) == 2
    with pytest.raises(SystemExit):
        main([])
