"""``python -m truce_audit --week W --edition N --url URL``."""

import sys

from truce_audit.cli import main

sys.exit(main())
