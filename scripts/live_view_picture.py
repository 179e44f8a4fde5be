"""Write docs/img/live-view.png: the operator's live view of the demo clip, in headless Chromium.

    python scripts/live_view_picture.py [--config configs/live_view.yaml] [--settle 25]

Starts `streamer run` with the live-view config, lets its stats settle, screenshots the page and
stops the run (Ctrl-C). Run it with the CPU otherwise idle: the stats in the picture are real.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2

from streamer.testing.browser import Browser
from streamer.testing.wait import wait_until


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "healthz", timeout=2):
            return True
    except OSError:  # refused, or 503 while the camera is not delivering
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/live_view.yaml")
    ap.add_argument("--url", default="http://127.0.0.1:8080/")
    ap.add_argument("--settle", type=float, default=25.0, help="seconds of running before the picture")
    ap.add_argument("--out", default="docs/img/live-view.png")
    args = ap.parse_args()
    run = subprocess.Popen([sys.executable, "-m", "streamer.cli", "run", "--config", args.config])
    try:
        # up once /healthz says 200 (the camera delivers); a run that exits stops the wait too
        wait_until(lambda: _healthy(args.url) or run.poll() is not None, timeout_s=120, poll_s=0.5)
        if not _healthy(args.url):
            raise SystemExit("streamer run did not start the live view")
        browser = Browser()
        try:
            shot = browser.screenshots(args.url, count=1, settle_s=args.settle, every_s=0.0)[0]
        finally:
            browser.close()
    finally:
        run.send_signal(signal.SIGINT)
        run.wait(30)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, shot)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
