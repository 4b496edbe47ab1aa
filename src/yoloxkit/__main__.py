"""``python -m yoloxkit`` (also what ``torchrun -m yoloxkit train`` runs)."""

import sys

from .cli import main

sys.exit(main())
