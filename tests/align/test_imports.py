"""jpalign imports torch only: never jpmoe, jpcurate or transformers."""

import subprocess
import sys


def test_import_jpalign_pulls_in_no_other_package():
    code = (
        "import sys, jpalign; "
        "bad = [m for m in ('jpmoe', 'jpcurate', 'transformers', 'tokenizers', 'trl') if m in sys.modules]; "
        "print(bad); assert not bad"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
