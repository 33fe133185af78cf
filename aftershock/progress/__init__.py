"""Live progress of a run: the model (:mod:`.model`, pure) and its drawing (:mod:`.render`)."""

from aftershock.progress.model import Board, LoadSoFar, Stage, Status, load_so_far
from aftershock.progress.render import Progress

__all__ = ["Board", "LoadSoFar", "Progress", "Stage", "Status", "load_so_far"]
