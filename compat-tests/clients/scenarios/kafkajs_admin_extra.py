"""kafkajs: partition reassignments, broker configs with synonyms, legacy AlterConfigs on a
broker and __consumer_offsets in the topic list (kafkajs_admin_extra.js).

The checks live in the JavaScript file; this wrapper runs it with node against $BOOTSTRAP and
passes on its verdict, so the runner treats it like every other scenario.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import run_node_scenario  # noqa: E402

run_node_scenario("kafkajs_admin_extra.js")
