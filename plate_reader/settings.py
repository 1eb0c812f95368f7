"""The plate reader's settings slice (``LEZ_*`` variables; built by the entry point)."""

from __future__ import annotations

from lez.core.settings import CoreSettings


class PlateReaderSettings(CoreSettings):
    # Frames of one camera closer than this (capture time) belong to one passage.
    passage_gap_s: float = 2.0
    # A passage is closed when its camera has sent nothing for this long (wall clock). A
    # passage's frames come a few hundred ms apart: 1 s is four frame intervals, and it is
    # most of the capture-to-decision latency of a camera's last passage.
    passage_idle_s: float = 1.0
    ocr_threads: int = 1
    # A frame whose passage is already settled (two frames read the same plate surely, its
    # country established, nothing read otherwise) is not read: it stays in the passage, and
    # in its evidence, unread. False: every frame is read.
    skip_settled_frames: bool = True
    # True: the plate reader copies every frame's JPEG onto lez.plates (the old behaviour).
    # False: lez.plates carries only references (partition, offset on lez.frames) and the FIDUS
    # adapter fetches the frames of a decision that needs evidence.
    evidence_inline: bool = False
