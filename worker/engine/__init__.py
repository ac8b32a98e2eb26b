"""The TensorFlow engine: VGG19 features (vgg), the loss terms (losses) and the Adam loop (optimize).

Imports nothing from Redis, S3, Celery or Flask; the runner connects it to the world through a progress
callback. From shared/ it reads only pure vocabulary: errors (shared.errors), the job options' choices
(shared.params) and the compute precisions (shared.config), so those are defined once
(tests/unit/test_vocabulary.py pins both).
"""
