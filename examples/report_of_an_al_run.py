"""Watch an active-learning run, then write its report page (what `anharmal al status -w` and `al report` do).

Start a loop first (`python examples/al_emt_cu.py`, or `anharmal demo al`), then

    python examples/report_of_an_al_run.py AL_PK [DIR]

While the loop runs, this prints every 10 s its iterations table and the tree of what runs now (each
member's epoch, each MD run's step, the structures labelled); once it has ended, it writes DIR/index.html
(default `al-report`): the decision in plain words, every table and every plot in one page.
"""

import sys
import time

from aiida import load_profile, orm

from aiida_anharmal.analysis.al import status_lines
from aiida_anharmal.analysis.progress import progress_lines
from aiida_anharmal.analysis.report import write_report

load_profile()  # the default profile (`anharmal setup` makes `anharmal` the default if there was none)
if len(sys.argv) < 2:
    raise SystemExit(__doc__)
node = orm.load_node(int(sys.argv[1]))
while not node.is_terminated:
    print('\n'.join([*status_lines(node), *progress_lines(node)]), end='\n\n', flush=True)
    time.sleep(10)
print('\n'.join(status_lines(node)))
print('wrote', write_report(node, sys.argv[2] if len(sys.argv) > 2 else 'al-report'))
