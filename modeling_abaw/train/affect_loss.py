"""The training loss of the affect stages (finetune, tmf): the paper's Eq. 1-3, with Eq. 3's CCC over the global batch.

CCC is a statistic of the batch, not a mean over samples: computed on each process's micro-batch it is a different
loss (with 8 processes, a batch of 512 frames becomes eight CCCs of 64 frames). So the regression predictions and
labels of every process are gathered, with gradients (`torch.distributed.nn.functional.all_gather`), and every
process computes the same CCC loss of the whole batch. The gradient algebra: each process backpropagates that one
global loss; the gather's backward sums the N processes' (identical) contributions to each process's own
predictions, and DDP divides the summed parameter gradients by N, so the update is the single-process gradient of
the global loss. The classification losses (Eq. 1, 2) are means over samples and stay per process: DDP averages
their gradients.

With gradient accumulation the CCC is exact over each micro-step's global batch (processes x micro-batch), not over
the whole accumulated optimizer step: the accumulated gradient is the mean of the micro-steps' CCC gradients.
"""

from collections.abc import Mapping, Sequence

import torch
import torch.distributed.nn.functional as distributed
from accelerate import Accelerator
from torch import nn

from ..losses import task_loss
from ..tasks import TASKS
from .labels import label_inputs


def gather_with_gradients(accelerator: Accelerator, tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` of every process concatenated along the batch axis (process order), gradients flowing back to each
    process's own part; `tensor` itself in a single process. Every process must give the same shape (training loaders
    drop the last incomplete batch, so they do)."""
    if accelerator.num_processes == 1:
        return tensor
    return torch.cat(distributed.all_gather(tensor.contiguous()))


def affect_loss(
    accelerator: Accelerator, model: nn.Module, inputs: Mapping, batch: Mapping, tasks: Sequence[str]
) -> torch.Tensor:
    """The training loss of an affect model on a micro-batch: the model's own losses of the classification tasks
    (means over this process's samples) plus, for each regression task, the task's loss (Eq. 3, markers ignored per
    dimension) over the global batch of all processes (see the module docstring).

    `inputs` are the model's keyword arguments without labels; `batch` holds the labels (`au_labels`, ...). Padding
    frames of clips carry the "no label" markers (ClipDataset), so the regression loss ignores them.
    """
    per_process = [name for name in tasks if not TASKS[name].is_regression]
    outputs = model(**inputs, **label_inputs(batch, per_process))
    loss = outputs.loss if per_process else 0.0
    for name in tasks:
        task = TASKS[name]
        if task.is_regression:
            predictions = gather_with_gradients(accelerator, outputs[task.output_key])
            labels = gather_with_gradients(accelerator, batch[task.label_key])
            loss = loss + task_loss(task, predictions, labels)
    return loss
