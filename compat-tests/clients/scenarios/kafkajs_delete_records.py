"""kafkajs: DeleteRecords through admin.deleteTopicRecords (kafkajs_delete_records.js).

The checks live in the JavaScript file; this wrapper runs it with node against $BOOTSTRAP and
passes on its verdict, so the runner treats it like every other scenario.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from compat import bootstrap  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
cache = os.environ.get("GREGOR_CACHE") or os.path.expanduser("~/.cache/gregor")
env = dict(os.environ, BOOTSTRAP=bootstrap(), GREGOR_NODE_MODULES=os.path.join(cache, "node", "node_modules"))
result = subprocess.run(["node", os.path.join(here, "kafkajs_delete_records.js")], env=env, timeout=90)
sys.exit(result.returncode)
