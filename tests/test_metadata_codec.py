"""Message.metadata reads and writes exact JSON whatever else is installed (orjson included)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import ROOT
from tests.processes import subprocess_env

# Stands in for orjson, which the suite does not install: the same behaviour for integers
# beyond 64 bits (read as floats, refused when written).
FAKE_ORJSON = """
import json

def _int(text):
    value = int(text)
    return value if -2**63 <= value < 2**64 else float(text)

def loads(text):
    return json.loads(text, parse_int=_int)

def dumps(value):
    text = json.dumps(value, separators=(",", ":"))
    if str(-2**63 - 1) in text or str(2**64) in text:
        raise TypeError("Integer exceeds 64-bit range")
    return text.encode()
"""
ROUND_TRIP = """
from coach_db.models import Message
field = Message._meta.fields_map["metadata"]
big = {"low": -2**63 - 1, "high": 2**64}
assert field.to_python_value('{"low": -9223372036854775809, "high": 18446744073709551616}') == big
assert field.to_db_value(big, Message) == '{"low":-9223372036854775809,"high":18446744073709551616}'
print("exact")
"""


def test_metadata_keeps_big_integers_exact_when_orjson_is_installed(tmp_path: Path) -> None:
    (tmp_path / "orjson.py").write_text(textwrap.dedent(FAKE_ORJSON))
    env = subprocess_env(PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    check = "import tortoise.fields.data as d, orjson; assert d.JSON_LOADS is orjson.loads"
    # The stand-in is what Tortoise picks up as its default JSON codec ...
    assert subprocess.run([sys.executable, "-c", check], env=env).returncode == 0
    # ... and the metadata field does not use it.
    done = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP], env=env, capture_output=True, text=True
    )
    assert done.stdout.strip() == "exact", done.stderr
