"""sarama 1.22.1 (Debian, Go): admin - the checks are in go/sarama/main.go (scenarioAdmin)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from go_common import run  # noqa: E402

run("sarama", "admin")
