import sys

from semembed.cli import main

sys.exit(main())
