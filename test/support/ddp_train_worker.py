"""Test helper: train/train.py's main() in one torchrun process, then this rank's weights saved.

train.py writes from rank 0 only; this helper (not the trainer) saves every rank's final weights,
taken when the last epoch's validation starts, so the test can compare the ranks.

    torchrun --standalone --nproc-per-node 2 test/support/ddp_train_worker.py OUT TRAIN_ARGS...

(with ``test/`` on PYTHONPATH, for ``support``).
"""
import os
import sys
from pathlib import Path

import torch

from support import train_script


def main() -> None:
    """Run the trainer with a hook on ``validate`` that keeps the model's weights."""
    out, argv = Path(sys.argv[1]), sys.argv[2:]
    train = train_script('train')
    kept = {}
    validate = train.validate

    def keep_weights(model, *args, **kwargs):
        kept['state'] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return validate(model, *args, **kwargs)

    train.validate = keep_weights
    summary = train.main(argv)
    torch.save({'state': kept['state'], 'summary': summary},
               out / f'rank{os.environ["RANK"]}.pt')


if __name__ == '__main__':
    main()
