"""Shape buckets: each level is optimised at its size rounded up to a multiple of 32 px, so a worker keeps
one compiled step per bucket instead of tracing VGG19's gradient again for every new image size.

The job's content (and mask, and the previous level's result) is resized up to the bucket, and the result is
resized back down to the size asked for, with antialiasing. Sizes already on the grid (256, 512, 1024, ...)
are not resampled at all. Otherwise the round trip stretches the image by under 32 px per side, less than
one VGG19 block5 cell (16 px) of detail per 16 px of side, and the antialiased down-resize averages it back:
no change beyond the softening of one bilinear resample. The style is sized to the bucket too, so its scale
relative to the content is what the job asked for.
Padding instead would need a mask on every job, and VGG's zero-padded borders would then sit inside the
picture's statistics.

Tileable jobs are never resampled (their sides are already multiples of 16): a resize clamps at the edges
instead of wrapping, which would mark the seam. They bucket on 16 px.
"""

BUCKET_PX = 32
TILEABLE_BUCKET_PX = 16


def bucket_size(size: tuple[int, int], *, tileable: bool = False) -> tuple[int, int]:
    """The (height, width) a level of ``size`` is optimised at."""
    multiple = TILEABLE_BUCKET_PX if tileable else BUCKET_PX
    height, width = (-(-side // multiple) * multiple for side in size)
    return height, width
