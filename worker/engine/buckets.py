"""Shape buckets: each level is optimised at its size rounded up to a multiple of 32 px, so a worker keeps
one compiled step per bucket instead of tracing VGG19's gradient again for every new image size.

Resize, not pad. The job's content (and mask, and the previous level's result) is resized up to the bucket;
the final result, snapshots and a canceled job's last image are resized back to the size asked for, with
antialiasing. Sizes already on the grid (256, 512, 1024, ...) are not resampled at all. Otherwise the image is
stretched by less than 32 px per side and shrunk back by the same factor: the output differs from an
unbucketed run by one bilinear resample's softening, and the style is sized to the bucket too, so its scale
relative to the content is what the job asked for. Padding would keep the pixels but put padded borders
inside the picture's Gram statistics, unless every job carried a mask (a slower step for all).

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
