"""Shape buckets: each level is optimised at its size rounded up to a bucket, so a worker keeps one compiled
step per bucket instead of tracing VGG19's gradient again for every new image size.

Each side is rounded up to a multiple of 16 px below 256 px, 32 below 512, 64 below 1024 and 128 above:
at most about 1/8 of a side is added (a 64x40 sprite is worked at 64x48, not 64x64), and there are at most 8
buckets per side per doubling of size, so a worker that sees every size still traces only a few dozen steps.

Resize, not pad. The job's content (and mask, and the previous level's result) is resized up to the bucket;
the final result, snapshots and a canceled job's last image are resized back to the size asked for, with
antialiasing. Sizes already on the grid (256, 512, 1024, ...) are not resampled at all. Otherwise the image is
stretched by at most 1/8 per side and shrunk back by the same factor: the output differs from an unbucketed
run by one bilinear resample's softening, and the style is sized to the bucket too, so its scale relative to
the content is what the job asked for. Padding would keep the pixels but put padded borders inside the
picture's Gram statistics, unless every job carried a mask (a slower step for all).

Tileable jobs are never resampled (their sides are already multiples of 16): a resize clamps at the edges
instead of wrapping, which would mark the seam. They bucket on 16 px at every size.
"""

TILEABLE_BUCKET_PX = 16
# (largest side, multiple it is rounded up to), smallest first; larger sides round to FINAL_BUCKET_PX.
BUCKET_STEPS = ((255, 16), (511, 32), (1023, 64))
FINAL_BUCKET_PX = 128


def bucket_size(size: tuple[int, int], *, tileable: bool = False) -> tuple[int, int]:
    """The (height, width) a level of ``size`` is optimised at."""
    height, width = (_round_up(side, TILEABLE_BUCKET_PX if tileable else _multiple(side)) for side in size)
    return height, width


def _multiple(side: int) -> int:
    return next((multiple for largest, multiple in BUCKET_STEPS if side <= largest), FINAL_BUCKET_PX)


def _round_up(side: int, multiple: int) -> int:
    return -(-side // multiple) * multiple
