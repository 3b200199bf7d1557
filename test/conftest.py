"""Test-wide settings.

One torch thread: the models under test are small, and on a shared 2-core machine intra-op
threads spin against each other (a 27x slowdown was measured with a trainer running beside).
"""

import torch

torch.set_num_threads(1)
