"""Any `stadsmunt` command in a process that also runs the tests' rules version 2
(tests/chaincode/rules_v2.py), for the rules switch test (test_rules_switch.py):

    python -m tests.integration.v2_node node run DIR/NAME
    python -m tests.integration.v2_node audit SOURCE ...

adds version 2 with chaincode.add_rules, then runs exactly what `python -m ops.cli ...`
runs. A validator started so is one whose installation runs versions 1 and 2. Lives
under tests/ only: the product ships version 1 alone.
"""
from __future__ import annotations

import sys

import chaincode
from ops import cli
from tests.chaincode import rules_v2


def main() -> int:
    chaincode.add_rules(rules_v2.VERSION, rules_v2)
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
