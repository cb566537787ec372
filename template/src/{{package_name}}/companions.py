"""The torch companion packages (torchvision, torchaudio) and how to install the right build.

They ship compiled against one torch release: from PyPI, `pip install torchvision` replaces a
CPU torch with a CUDA build (and about 20 nvidia wheels), and a PyPI torchvision next to a CPU
torch fails to import (`operator torchvision::nms does not exist`). The build that matches is
on PyTorch's index for the torch build that is installed; `install_command` names it.
"""

from __future__ import annotations

import torch

INDEX = "https://download.pytorch.org/whl/"


def index_url() -> str:
    """PyTorch's package index for the installed torch build: cpu, or cuXYZ."""
    cuda = torch.version.cuda
    return INDEX + ("cu" + cuda.replace(".", "") if cuda else "cpu")


def install_command(package: str) -> str:
    """The pip command that adds `package` built for the installed torch, keeping torch."""
    release = torch.__version__.split("+")[0]
    return f"pip install --index-url {index_url()} 'torch=={release}' {package}"
