"""``python -m netra_ws.load``: print the locustfile's path, for ``locust -f``.

    locust -f "$(python -m netra_ws.load)" --host ws://… --headless -u 2000 -r 200 -t 60s

Only the path: importing the locustfile would import Locust, which monkey-patches.
"""

from pathlib import Path

print(Path(__file__).resolve().with_name("locustfile.py"))
