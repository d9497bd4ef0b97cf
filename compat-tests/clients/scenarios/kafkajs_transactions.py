"""kafkajs: transactional producer (commit, abort, sendOffsets), read_committed and
read_uncommitted consumers, admin.fetchOffsets (kafkajs_transactions.js).

The checks live in the JavaScript file; this wrapper runs it with node against $BOOTSTRAP and
passes on its verdict, so the runner treats it like every other scenario.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import run_node_scenario  # noqa: E402

run_node_scenario("kafkajs_transactions.js")
