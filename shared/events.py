"""Progress events: what a job's event stream carries."""

import json
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class JobEvent:
    """One entry of a job's event stream: a status change or a progress report."""

    type: str  # "status", "progress" or "snapshot" (an intermediate image was stored)
    status: str
    step: int = 0
    total_steps: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    message: str = ""
    ts: float = field(default_factory=time.time)
    job_id: str = ""
    image_key: str = ""  # snapshot events: the object key of the intermediate image

    def to_fields(self) -> dict[str, str]:
        """Flatten for XADD."""
        extra = {"image_key": self.image_key} if self.image_key else {}
        return {
            **extra,
            "type": self.type,
            "status": self.status,
            "step": str(self.step),
            "total_steps": str(self.total_steps),
            "losses": json.dumps(self.losses, sort_keys=True),
            "message": self.message,
            "ts": f"{self.ts:.3f}",
        }

    @classmethod
    def from_fields(cls, raw: dict[str, str]) -> "JobEvent":
        """Rebuild from a stream entry written by `to_fields`."""
        return cls(
            type=raw["type"],
            status=raw["status"],
            step=int(raw.get("step", 0)),
            total_steps=int(raw.get("total_steps", 0)),
            losses=json.loads(raw.get("losses") or "{}"),
            message=raw.get("message", ""),
            ts=float(raw.get("ts", 0)),
            job_id=raw.get("job_id", ""),
            image_key=raw.get("image_key", ""),
        )
