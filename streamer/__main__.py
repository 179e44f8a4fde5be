"""`python -m streamer …` = the `streamer` command (where pip's scripts folder is not on PATH)."""

import sys

from streamer.cli import main

sys.exit(main())
