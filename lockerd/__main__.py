"""`python -m lockerd` is `lockerd`."""

import sys

from lockerd.cli.main import main

sys.exit(main())
