"""The machine a benchmark ran on, recorded beside every figure."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime, timezone

from jetfm.backbone.hardware import cpu_model


def machine_info() -> dict[str, object]:
    """CPU (and GPU), versions, load average, the command and the date, for a results JSON."""
    info: dict[str, object] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "command": shlex.join([os.path.basename(sys.executable), *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info
