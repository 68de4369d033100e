"""`python -m nabra` (and `accelerate launch -m nabra train ...`)."""

import sys

from nabra.cli import main

sys.exit(main())
