"""Every DeblendConfig field is validated, with one line naming the field, from the
command line, from config files and in Python (issue 19)."""

from __future__ import annotations

import pytest

from vermilion.cli import main
from vermilion.pipeline import DeblendConfig

PLANES = (
    "(known: ['BAD', 'BRIGHT_OBJECT', 'CLIPPED', 'CR', 'CROSSTALK', 'DETECTED', "
    "'DETECTED_NEGATIVE', 'EDGE', 'INEXACT_PSF', 'INJECTED', 'INJECTED_TEMPLATE', 'INTRP', "
    "'INVALID', 'ITL_DIP', 'NOT_DEBLENDED', 'NO_DATA', 'REJECTED', 'SAT', 'SAT_TEMPLATE', "
    "'SENSOR_EDGE', 'SPIKE', 'STREAK', 'SUSPECT', 'UNMASKEDNAN', 'VIGNETTED'])"
)

CASES = [
    (
        ["badMask=[BAD, SAT"],
        "Config override 'badMask=[BAD, SAT': '[BAD, SAT' is not a valid list or mapping "
        "(while parsing a flow sequence)",
    ),
    (["badMask={a: 1}"], "DeblendConfig.badMask must be a list of names, got {'a': 1}"),
    (
        ["badMask=BDA"],
        f"DeblendConfig.badMask names unknown mask plane(s) ['BDA'] {PLANES}, got ('BDA',)",
    ),
    (["minIter=500", "maxIter=10"], "DeblendConfig.minIter must be <= maxIter (10), got 500"),
    (
        ["badMask=[1, 2]"],
        "DeblendConfig.badMask must be a list of names such as [BAD, SAT] or BAD,SAT; "
        "1 is not a name",
    ),
    (["maxIter=ten"], "DeblendConfig.maxIter must be an integer, got 'ten'"),
    (["relativeError=-1"], "DeblendConfig.relativeError must be a positive number, got -1.0"),
]


@pytest.mark.parametrize(("overrides", "message"), CASES)
def test_cli_overrides(tmp_path, capsys, overrides, message):
    argv = ["deblend", "--repo", str(tmp_path / "none"), "--tract", "0", "--patch", "0"]
    for o in overrides:
        argv += ["-c", o]
    assert main([*argv, "--show-config"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == f"vermilion: error: ValueError: {message}"
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("overrides", "message"), CASES[1:])
def test_python_and_files(tmp_path, overrides, message):
    with pytest.raises(ValueError) as info:
        DeblendConfig.from_args(overrides)
    assert str(info.value) == message
    path = tmp_path / "c.yaml"
    path.write_text("\n".join(o.replace("=", ": ", 1) for o in overrides) + "\n")
    with pytest.raises(ValueError) as info:
        DeblendConfig.from_file(path)
    assert str(info.value) == f"{path}: {message}"


def test_good_values_still_pass():
    config = DeblendConfig.from_args(["badMask=[BAD, SAT]", "maxIter=10", "pseudoColumns=sky"])
    assert config.badMask == ("BAD", "SAT") and config.maxIter == 10
    assert DeblendConfig.from_args(["badMask=BAD,CR"]).badMask == ("BAD", "CR")
    assert DeblendConfig(minIter=5, maxIter=5).minIter == 5
