"""Runs one of the Go scenario programs (scenarios/go/*, built by install.sh into
${GREGOR_CACHE:-~/.cache/gregor}/go-clients) against $BOOTSTRAP and passes on its verdict.

  go_common.run("sarama", "group-consume", group=True)
"""
import os
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from compat import bootstrap, log, unique_topic  # noqa: E402

CACHE = os.environ.get("GREGOR_CACHE") or os.path.expanduser("~/.cache/gregor")


def run(program, mode, group=False, timeout_s=90):
    binary = os.path.join(CACHE, "go-clients", f"{program}-scenario")
    if not os.access(binary, os.X_OK):
        log(f"FAIL {binary} missing: run compat-tests/clients/install.sh (builds the Go scenarios)")
        sys.exit(1)
    args = [binary, mode, bootstrap(), unique_topic(f"{program}-{mode}")]
    if group:
        args.append(f"compat-{program}-{uuid.uuid4().hex[:8]}")
    try:
        res = subprocess.run(args, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log(f"FAIL {program} {mode}: no verdict within {timeout_s} s")
        sys.exit(1)
    sys.exit(res.returncode)
