"""The heading every benchmark table carries: what was measured, when, on which machine, by which command."""

import datetime
import os
import platform
import sys


def machine() -> str:
    """CPU model and cores, and the GPUs TensorFlow sees (if it is already imported)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpus = ""
    if "tensorflow" in sys.modules:
        devices = sys.modules["tensorflow"].config.list_physical_devices("GPU")
        gpus = f", GPUs: {', '.join(device.name for device in devices) or 'none'}"
    return f"{platform.node()}: {model}, {os.cpu_count()} cores{gpus}"


def header(title: str, note: str = "") -> list[str]:
    """Markdown lines: the title, then the date, machine, load average (before the run), command and note."""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join(["python", *sys.argv])
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = ["", f"### {title}", "", f"{when}; {machine()}; load {load}; `{command}`"]
    return lines + ([note, ""] if note else [""])
