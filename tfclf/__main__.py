import sys

from tfclf.cli import main

sys.exit(main())
