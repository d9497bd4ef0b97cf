"""kafka-go 0.2.1 (Debian, Go): group-consume - the checks are in go/kafkago/main.go (scenarioGroup)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from go_common import run  # noqa: E402

run("kafkago", "group-consume", group=True)
